package jwt

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var enc = base64.RawURLEncoding

// tok builds a compact JWS from header and claims JSON text and a fixed
// signature.
func tok(header, claims string) string {
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims)) + "." + enc.EncodeToString([]byte("signature"))
}

const (
	okHeader = `{"alg":"RS256","kid":"k1","typ":"at+jwt"}`
	okClaims = `{"iss":"https://as.example","sub":"alice","aud":"https://rs.example","exp":1700000000,"nbf":1699990000,"iat":1699990000,"client_id":"c1","scope":"read write","jti":"id-1"}`
)

// stdAlphabet returns a token whose header encoding contains '-' or '_',
// spelled in the standard alphabet ('+', '/').
func stdAlphabet(t testing.TB) string {
	for i := range 1000 {
		h := `{"alg":"RS256","kid":"` + strings.Repeat("?", i%7) + strings.Repeat("~", i/7) + `"}`
		e := enc.EncodeToString([]byte(h))
		if strings.ContainsAny(e, "-_") {
			e = strings.NewReplacer("-", "+", "_", "/").Replace(e)
			return e + "." + enc.EncodeToString([]byte(okClaims)) + ".c2ln"
		}
	}
	t.Fatal("no header with '-' or '_' in its encoding")
	return ""
}

// padded encodes a JSON text, with trailing spaces added as needed, so
// that the padded base64url form ends in '='.
func padded(js string) string {
	for !strings.HasSuffix(base64.URLEncoding.EncodeToString([]byte(js)), "=") {
		js += " "
	}
	return base64.URLEncoding.EncodeToString([]byte(js))
}

// withPart replaces part i (0, 1 or 2) of a token.
func withPart(s string, i int, part string) string {
	p := strings.Split(s, ".")
	p[i] = part
	return strings.Join(p, ".")
}

type parseCase struct {
	name  string
	in    string
	ok    bool
	check func(t *testing.T, tk *Token)
}

func parseCases(t testing.TB) []parseCase {
	valid := tok(okHeader, okClaims)
	h, p, s := func() (string, string, string) {
		x := strings.Split(valid, ".")
		return x[0], x[1], x[2]
	}()
	bomb := strings.Repeat("[", 100_000)
	claims := func(c string) string { return tok(`{"alg":"ES256"}`, c) }
	header := func(hd string) string { return tok(hd, `{"sub":"alice"}`) }

	aud := func(want []string) func(*testing.T, *Token) {
		return func(t *testing.T, tk *Token) {
			t.Helper()
			if !reflect.DeepEqual(tk.Claims.Audience, want) || (want != nil && tk.Claims.Audience == nil) {
				t.Errorf("Audience = %#v, want %#v", tk.Claims.Audience, want)
			}
		}
	}
	list := func(field string, got func(*Token) []string, want []string) func(*testing.T, *Token) {
		return func(t *testing.T, tk *Token) {
			t.Helper()
			if g := got(tk); len(g) != len(want) || (len(want) > 0 && !reflect.DeepEqual(g, want)) {
				t.Errorf("%s = %#v, want %#v", field, g, want)
			}
		}
	}
	scope := func(tk *Token) []string { return tk.Claims.Scope }
	scp := func(tk *Token) []string { return tk.Claims.Scp }
	expAt := func(want time.Time) func(*testing.T, *Token) {
		return func(t *testing.T, tk *Token) {
			t.Helper()
			if !tk.Claims.HasExpiry || !tk.Claims.Expiry.Equal(want) {
				t.Errorf("Expiry = %v (HasExpiry %v), want %v", tk.Claims.Expiry, tk.Claims.HasExpiry, want)
			}
		}
	}

	return []parseCase{
		{"valid", valid, true, func(t *testing.T, tk *Token) {
			want := Header{Alg: "RS256", Kid: "k1", Typ: "at+jwt"}
			if !reflect.DeepEqual(tk.Header, want) {
				t.Errorf("Header = %+v, want %+v", tk.Header, want)
			}
			c := tk.Claims
			if c.Issuer != "https://as.example" || c.Subject != "alice" || c.ClientID != "c1" || c.ID != "id-1" {
				t.Errorf("string claims = %+v", c)
			}
			if !reflect.DeepEqual(c.Audience, []string{"https://rs.example"}) {
				t.Errorf("Audience = %#v", c.Audience)
			}
			if !c.HasExpiry || !c.Expiry.Equal(time.Unix(1700000000, 0)) || !c.NotBefore.Equal(time.Unix(1699990000, 0)) || !c.IssuedAt.Equal(time.Unix(1699990000, 0)) {
				t.Errorf("dates = exp %v (%v) nbf %v iat %v", c.Expiry, c.HasExpiry, c.NotBefore, c.IssuedAt)
			}
			if !reflect.DeepEqual(c.Scope, []string{"read", "write"}) || c.Scp != nil {
				t.Errorf("Scope = %#v, Scp = %#v", c.Scope, c.Scp)
			}
			if string(tk.Payload) != okClaims || string(tk.Signature) != "signature" || tk.SigningInput != h+"."+p {
				t.Errorf("Payload %q Signature %q SigningInput %q", tk.Payload, tk.Signature, tk.SigningInput)
			}
		}},
		{"claims without exp", claims(`{"sub":"alice"}`), true, func(t *testing.T, tk *Token) {
			c := tk.Claims
			if c.HasExpiry || !c.Expiry.IsZero() || !c.NotBefore.IsZero() || !c.IssuedAt.IsZero() || c.Audience != nil || c.Scope != nil {
				t.Errorf("absent claims not zero: %+v", c)
			}
		}},
		{"empty claims object", claims(`{}`), true, nil},
		{"whitespace around claims object", claims(" \t\r\n{\"sub\":\"a\"}\n "), true, nil},

		// Shape.
		{"2 parts", h + "." + p, false, nil},
		{"4 parts", valid + "." + s, false, nil},
		{"5 parts (JWE)", h + ".ZW5jcnlwdGVka2V5.aXY." + p + "." + s, false, nil},
		{"one part", h, false, nil},
		{"empty string", "", false, nil},
		{"only dots", "..", false, nil},
		{"empty header part", "." + p + "." + s, false, nil},
		{"empty payload part", h + ".." + s, false, nil},
		{"empty signature part", h + "." + p + ".", false, nil},
		{"unsecured JWS (alg none, empty signature)", tok(`{"alg":"none"}`, `{}`)[:len(tok(`{"alg":"none"}`, `{}`))-len(s)], false, nil},

		// Encoding.
		{"padding '=' in the header part", withPart(valid, 0, padded(okHeader)), false, nil},
		{"padding '=' in the payload part", withPart(valid, 1, base64.URLEncoding.EncodeToString([]byte(`{"sub":"a"}`))), false, nil},
		{"padding '=' in the signature part", withPart(valid, 2, base64.URLEncoding.EncodeToString([]byte("sig!"))), false, nil},
		{"standard alphabet '+' '/' in the header", stdAlphabet(t), false, nil},
		{"standard alphabet in the signature", withPart(valid, 2, base64.RawStdEncoding.EncodeToString([]byte{0xfb, 0xff, 0xbf})), false, nil},
		{"canonical 2-byte signature", withPart(valid, 2, "c2k"), true, nil},
		{"non-zero trailing bits in the signature", withPart(valid, 2, "c2l"), false, nil},
		{"signature part not base64", withPart(valid, 2, "!!!"), false, nil},
		{"payload part not base64", withPart(valid, 1, "e30*"), false, nil},
		{"space inside a part", withPart(valid, 2, "c2 ln"), false, nil},

		// Header.
		{"header not JSON", header(`alg=RS256`), false, nil},
		{"header JSON array", header(`[{"alg":"RS256"}]`), false, nil},
		{"header JSON string", header(`"RS256"`), false, nil},
		{"header JSON null", header(`null`), false, nil},
		{"header without alg", header(`{"kid":"k1"}`), false, nil},
		{"alg empty", header(`{"alg":""}`), false, nil},
		{"alg null", header(`{"alg":null}`), false, nil},
		{"alg a number", header(`{"alg":256}`), false, nil},
		{"kid a number", header(`{"alg":"RS256","kid":1}`), false, nil},
		{"typ an object", header(`{"alg":"RS256","typ":{}}`), false, nil},
		{"header with trailing garbage", header(`{"alg":"RS256"}x`), false, nil},
		{"header followed by a second object", header(`{"alg":"RS256"}{"alg":"none"}`), false, nil},
		{"alg none parses (refusing it is the caller's rule)", header(`{"alg":"none"}`), true, func(t *testing.T, tk *Token) {
			if tk.Header.Alg != "none" {
				t.Errorf("Alg = %q", tk.Header.Alg)
			}
		}},
		{"crit absent", header(`{"alg":"RS256"}`), true, func(t *testing.T, tk *Token) {
			if tk.Header.HasCrit || tk.Header.Crit != nil {
				t.Errorf("HasCrit %v Crit %#v", tk.Header.HasCrit, tk.Header.Crit)
			}
		}},
		{"crit present", header(`{"alg":"RS256","crit":["exp","b64"],"exp":1,"b64":false}`), true, func(t *testing.T, tk *Token) {
			if !tk.Header.HasCrit || !reflect.DeepEqual(tk.Header.Crit, []string{"exp", "b64"}) {
				t.Errorf("HasCrit %v Crit %#v", tk.Header.HasCrit, tk.Header.Crit)
			}
		}},
		{"crit empty list (HasCrit, for the caller to refuse)", header(`{"alg":"RS256","crit":[]}`), true, func(t *testing.T, tk *Token) {
			if !tk.Header.HasCrit || len(tk.Header.Crit) != 0 {
				t.Errorf("HasCrit %v Crit %#v", tk.Header.HasCrit, tk.Header.Crit)
			}
		}},
		{"crit null counts as present", header(`{"alg":"RS256","crit":null}`), true, func(t *testing.T, tk *Token) {
			if !tk.Header.HasCrit {
				t.Errorf("crit:null gave HasCrit false; a present member must fail closed")
			}
		}},
		{"crit a string", header(`{"alg":"RS256","crit":"exp"}`), false, nil},
		{"crit a list of numbers", header(`{"alg":"RS256","crit":[1]}`), false, nil},
		{"crit an object", header(`{"alg":"RS256","crit":{"exp":true}}`), false, nil},

		// Claims: aud.
		{"aud string", claims(`{"aud":"https://rs.example"}`), true, aud([]string{"https://rs.example"})},
		{"aud string with a space is one audience", claims(`{"aud":"a b"}`), true, aud([]string{"a b"})},
		{"aud array", claims(`{"aud":["a","b"]}`), true, aud([]string{"a", "b"})},
		{"aud empty array", claims(`{"aud":[]}`), true, aud([]string{})},
		{"aud null", claims(`{"aud":null}`), true, aud(nil)},
		{"aud number", claims(`{"aud":42}`), false, nil},
		{"aud object", claims(`{"aud":{"a":1}}`), false, nil},
		{"aud array with a number", claims(`{"aud":["a",1]}`), false, nil},
		{"aud true", claims(`{"aud":true}`), false, nil},

		// Claims: scope and scp.
		{"scope string split on spaces only", claims(`{"scope":"  read  write\tadmin "}`), true, list("Scope", scope, []string{"read", "write\tadmin"})},
		{"scope empty string", claims(`{"scope":""}`), true, list("Scope", scope, nil)},
		{"scope array", claims(`{"scope":["read","write"]}`), true, list("Scope", scope, []string{"read", "write"})},
		{"scope number", claims(`{"scope":1}`), false, nil},
		{"scp array", claims(`{"scp":["read","write"]}`), true, list("Scp", scp, []string{"read", "write"})},
		{"scp string split on spaces", claims(`{"scp":"read write"}`), true, list("Scp", scp, []string{"read", "write"})},
		{"scp object", claims(`{"scp":{}}`), false, nil},

		// Claims: dates.
		{"exp integer", claims(`{"exp":1700000000}`), true, expAt(time.Unix(1700000000, 0))},
		{"exp float keeps fractional seconds", claims(`{"exp":1700000000.25}`), true, expAt(time.Unix(1700000000, 250_000_000))},
		{"exp in exponent form", claims(`{"exp":1.7e9}`), true, expAt(time.Unix(1700000000, 0))},
		{"exp negative fraction", claims(`{"exp":-1.5}`), true, expAt(time.Unix(-2, 500_000_000))},
		{"exp 0", claims(`{"exp":0}`), true, expAt(time.Unix(0, 0))},
		{"exp at the 1e15 bound", claims(`{"exp":1e15}`), true, expAt(time.Unix(1e15, 0))},
		{"exp null is absent", claims(`{"exp":null}`), true, func(t *testing.T, tk *Token) {
			if tk.Claims.HasExpiry {
				t.Error("HasExpiry for exp:null")
			}
		}},
		{"exp string", claims(`{"exp":"1700000000"}`), false, nil},
		{"exp huge (1e300)", claims(`{"exp":1e300}`), false, nil},
		{"exp beyond float64 (1e400)", claims(`{"exp":1e400}`), false, nil},
		{"exp just past the bound", claims(`{"exp":1000000000000001}`), false, nil},
		{"exp -1e300", claims(`{"exp":-1e300}`), false, nil},
		{"exp bool", claims(`{"exp":true}`), false, nil},
		{"exp array", claims(`{"exp":[1]}`), false, nil},
		{"nbf string", claims(`{"nbf":"1"}`), false, nil},
		{"iat huge", claims(`{"iat":1e300}`), false, nil},

		// Claims: types and JSON.
		{"iss a number", claims(`{"iss":1}`), false, nil},
		{"sub an object", claims(`{"sub":{}}`), false, nil},
		{"client_id an array", claims(`{"client_id":["c"]}`), false, nil},
		{"claims with trailing garbage", claims(`{"sub":"a"}x`), false, nil},
		{"claims followed by a second object", claims(`{"sub":"a"}{"sub":"b"}`), false, nil},
		{"claims JSON array", claims(`[{"sub":"a"}]`), false, nil},
		{"claims JSON null", claims(`null`), false, nil},
		{"claims empty", claims(``), false, nil},
		{"claims not JSON", claims(`sub=a`), false, nil},
		{"claims unterminated", claims(`{"sub":"a"`), false, nil},
		{"nested depth bomb in claims", claims(`{"x":` + bomb), false, nil},
		{"nested depth bomb in header", header(`{"alg":"RS256","x":` + bomb), false, nil},
		{"closed depth bomb in claims", claims(`{"x":` + bomb + strings.Repeat("]", 100_000) + `}`), false, nil},
	}
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			tk, err := Parse(tc.in)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Parse took %v", d)
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if tc.check != nil {
					tc.check(t, tk)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted %q: %+v", tc.in, tk)
			}
			if tk != nil {
				t.Errorf("Parse returned a token with error %v", err)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func TestMaybeJWS(t *testing.T) {
	valid := tok(okHeader, okClaims)
	h, p, s := func() (string, string, string) {
		x := strings.Split(valid, ".")
		return x[0], x[1], x[2]
	}()
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{"valid", valid, true},
		{"minimal shape", "eyJ.e30.x", true},
		{"shape only: the parts are not decoded", "ey!.!.!", true},
		{"2 parts", h + "." + p, false},
		{"4 parts", valid + "." + s, false},
		{"5 parts (JWE)", h + ".ZW5jcnlwdGVka2V5.aXY." + p + "." + s, false},
		{"empty", "", false},
		{"only dots", "..", false},
		{"empty header part", "." + p + "." + s, false},
		{"empty payload part", h + ".." + s, false},
		{"empty signature part", h + "." + p + ".", false},
		{"trailing dot after 3 parts", valid + ".", false},
		{"opaque token", "2YotnFZFEjr1zCsicMWpAA", false},
		{"opaque token with dots", "abc.def.ghi", false},
		{"header not starting with ey", "e30." + p + "." + s, false},
		// The decoded header starting with whitespace (base64 "IHs") is
		// not recognized, although Parse accepts it; such a token takes
		// the opaque path and fails closed there.
		{"header with leading space", enc.EncodeToString([]byte(" "+okHeader)) + "." + p + "." + s, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := MaybeJWS(tc.in); got != tc.want {
				t.Errorf("MaybeJWS(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
	// Every token Parse rejects for its shape, MaybeJWS rejects too.
	for _, tc := range parseCases(t) {
		n := strings.Count(tc.in, ".")
		if (n != 2 || strings.Contains(tc.in, "..") || strings.HasPrefix(tc.in, ".") || strings.HasSuffix(tc.in, ".")) && MaybeJWS(tc.in) {
			t.Errorf("%s: MaybeJWS true for a token of the wrong shape", tc.name)
		}
	}
}

// TestParseRejectsCRLF: RFC 7515 §7.1 parts are base64url with no line
// breaks. encoding/base64 skips CR and LF even in Strict mode, so Parse
// decodes "sig\n" like "sig": a valid token then has several accepted
// spellings (a CR/LF inside the signature part keeps the signature valid;
// inside header or payload, SigningInput keeps it and the signature fails).
func TestParseRejectsCRLF(t *testing.T) {
	valid := tok(okHeader, okClaims)
	h, _, _ := strings.Cut(valid, ".")
	i := strings.LastIndexByte(valid, '.')
	for name, s := range map[string]string{
		"LF after the token":         valid + "\n",
		"CRLF inside the signature":  valid[:i+3] + "\r\n" + valid[i+3:],
		"LF inside the header":       valid[:3] + "\n" + valid[3:],
		"CR at the start of payload": h + ".\r" + valid[len(h)+1:],
		"LF at the end of payload":   valid[:i] + "\n" + valid[i:],
	} {
		t.Run(name, func(t *testing.T) {
			tk, err := Parse(s)
			if err == nil {
				t.Fatalf("Parse accepted CR/LF inside a part (signature decodes to %q)", tk.Signature)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// TestParseNamesAreCaseSensitive: JOSE header parameter and claim names are
// case-sensitive (RFC 7515 §4, RFC 7519 §4). encoding/json matches struct
// fields case-insensitively, so {"iss":"a","ISS":"b"} yields Issuer "b"
// and {"alg":"none","Alg":"RS256"} yields Alg "RS256", where jwx and other
// JOSE libraries read "a" and "none". A signer that lets any party choose
// a claim name (custom claims) could thus override iss, aud, exp, scope...
// as this package sees them.
func TestParseNamesAreCaseSensitive(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		verify func(*Token) bool // true when the exact-case member won
	}{
		{"iss vs ISS", tok(`{"alg":"RS256"}`, `{"iss":"https://as.example","ISS":"https://evil.example"}`),
			func(tk *Token) bool { return tk.Claims.Issuer == "https://as.example" }},
		{"ISS alone is not iss", tok(`{"alg":"RS256"}`, `{"ISS":"https://evil.example"}`),
			func(tk *Token) bool { return tk.Claims.Issuer == "" }},
		{"Exp alone is not exp", tok(`{"alg":"RS256"}`, `{"Exp":4102444800}`),
			func(tk *Token) bool { return !tk.Claims.HasExpiry }},
		{"aud vs Aud", tok(`{"alg":"RS256"}`, `{"aud":"https://rs.example","Aud":"https://other.example"}`),
			func(tk *Token) bool { return reflect.DeepEqual(tk.Claims.Audience, []string{"https://rs.example"}) }},
		{"scope vs SCOPE", tok(`{"alg":"RS256"}`, `{"scope":"read","SCOPE":"admin"}`),
			func(tk *Token) bool { return reflect.DeepEqual(tk.Claims.Scope, []string{"read"}) }},
		{"alg vs Alg", tok(`{"alg":"none","Alg":"RS256"}`, `{}`),
			func(tk *Token) bool { return tk.Header.Alg == "none" }},
		{"kid vs KID", tok(`{"alg":"RS256","kid":"a","KID":"b"}`, `{}`),
			func(tk *Token) bool { return tk.Header.Kid == "a" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := Parse(tc.in)
			if err != nil {
				return // rejecting the ambiguity outright is also correct
			}
			if !tc.verify(tk) {
				t.Errorf("case-insensitive JSON member match: header %+v claims %+v", tk.Header, tk.Claims)
			}
		})
	}
	// Exact duplicates: RFC 7519 §4 allows "lexically last wins" (what
	// encoding/json does) or rejection.
	tk, err := Parse(tok(`{"alg":"RS256"}`, `{"iss":"a","iss":"b"}`))
	if err == nil && tk.Claims.Issuer != "b" {
		t.Errorf("duplicate iss: got %q, want the last (\"b\") or an error", tk.Claims.Issuer)
	}
}

// TestParseAudienceNullElement records that a null inside an aud array
// becomes an empty audience string (encoding/json's rule for null into a
// string). An empty string never equals a configured resource identifier.
func TestParseAudienceNullElement(t *testing.T) {
	tk, err := Parse(tok(`{"alg":"RS256"}`, `{"aud":["a",null]}`))
	if err != nil {
		return
	}
	if !reflect.DeepEqual(tk.Claims.Audience, []string{"a", ""}) {
		t.Errorf("Audience = %#v", tk.Claims.Audience)
	}
}

// FuzzParse: Parse never panics, every error wraps ErrMalformed, and a
// parsed token is exactly the input's parts: SigningInput is the input up
// to the last dot and the decoded payload and signature re-encode to their
// parts.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases(f) {
		if len(tc.in) < 10_000 {
			f.Add(tc.in)
		}
	}
	f.Add(tok(okHeader, okClaims) + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := Parse(s)
		if err != nil {
			if tk != nil {
				t.Fatalf("token and error %v", err)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		parts := strings.Split(s, ".")
		if len(parts) != 3 {
			t.Fatalf("parsed a token of %d parts: %q", len(parts), s)
		}
		if !strings.HasPrefix(s, tk.SigningInput) || tk.SigningInput != parts[0]+"."+parts[1] {
			t.Fatalf("SigningInput %q is not the input's first two parts %q", tk.SigningInput, s)
		}
		if got, want := enc.EncodeToString(tk.Signature), parts[2]; got != want {
			t.Fatalf("signature re-encodes to %q, part is %q", got, parts[2])
		}
		if got, want := enc.EncodeToString(tk.Payload), parts[1]; got != want {
			t.Fatalf("payload re-encodes to %q, part is %q", got, parts[1])
		}
		if tk.Header.Alg == "" {
			t.Fatal("parsed a header without alg")
		}
		if tk.Header.Crit != nil && !tk.Header.HasCrit {
			t.Fatal("Crit set without HasCrit")
		}
		if !MaybeJWS(s) {
			t.Fatalf("Parse accepts %q but MaybeJWS does not", s)
		}
	})
}

func TestPeekIssuer(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	h := enc(`{"alg":"ES256"}`)
	for _, tc := range []struct{ token, want string }{
		{h + "." + enc(`{"iss":"https://as.example","sub":12345}`) + ".sig", "https://as.example"},
		{h + "." + enc(`{"iss":"https://as.example","exp":"soon"}`) + ".sig", "https://as.example"},
		{h + "." + enc(`{"ISS":"https://as.example"}`) + ".sig", ""},
		{h + "." + enc(`{"iss":42}`) + ".sig", ""},
		{h + "." + enc(`{"iss":"x"`) + ".sig", ""},
		{h + "." + enc(`["iss"]`) + ".sig", ""},
		{h + ".!!!.sig", ""},
		{h + ".", ""},
		{"no-dots", ""},
	} {
		if got := PeekIssuer(tc.token); got != tc.want {
			t.Errorf("PeekIssuer(%q) = %q, want %q", tc.token, got, tc.want)
		}
	}
}

func TestLooksLikeJWS(t *testing.T) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	payload := enc(`{"sub":"x"}`)
	for _, tc := range []struct {
		token, alg string
		ok         bool
	}{
		{enc(`{"alg":"none"}`) + "." + payload + ".", "none", true},
		{enc(` {"alg":"RS256"}`) + "." + payload + ".c2ln", "RS256", true},
		{enc("\n{\"alg\":\"HS256\",\"typ\":\"JWT\"}") + ".." + "c2ln", "HS256", true},
		{enc(`{"alg":5}`) + "." + payload + ".", "", true},
		{enc(`{"typ":"JWT"}`) + "." + payload + ".", "", false},
		{enc(`["alg"]`) + "." + payload + ".", "", false},
		{enc(`{"alg":"none"}`) + "." + payload, "", false},            // two parts
		{enc(`{"alg":"none"}`) + "." + payload + ".a.b.c", "", false}, // a JWE has five
		{"opaque-token-without-dots", "", false},
		{"a.b.c", "", false},
		{"." + payload + ".", "", false},
	} {
		alg, ok := LooksLikeJWS(tc.token)
		if alg != tc.alg || ok != tc.ok {
			t.Errorf("LooksLikeJWS(%q) = %q, %v; want %q, %v", tc.token, alg, ok, tc.alg, tc.ok)
		}
	}
}
