package introspect

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tokenguard/tokenguard/internal/jwt"
	"github.com/tokenguard/tokenguard/jwks"
)

// fuzzToken is the token the fuzz targets introspect; "{token}" in a fuzzed
// body stands for it, as a server that echoes it would send it.
const (
	fuzzToken       = "opaque-SECRET-token-4f9a77c1"
	fuzzPlaceholder = "{token}"
	fuzzIssuer      = "https://as.example"
	fuzzAudience    = "https://rs.example"
	fuzzClientID    = "rs-1"
	fuzzLeeway      = 5 * time.Second
)

// fuzzNow is the fixed clock: 1_700_000_000.
var fuzzNow = time.Unix(1_700_000_000, 0)

// cannedTransport answers every request with one canned response.
type cannedTransport struct {
	status int
	header http.Header
	body   []byte
}

func (ct *cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode:    ct.status,
		Header:        ct.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(ct.body)),
		ContentLength: int64(len(ct.body)),
		Request:       r,
	}, nil
}

// checkIntrospectError checks what every Introspect error promises: one
// kind and one sentinel, no piece of the token, and a text with nothing a
// log reader would misread (controls, line separators, bidi overrides).
func checkIntrospectError(t *testing.T, err error) (te *TokenError, ue *UpstreamError) {
	t.Helper()
	isToken, isUpstream := errors.As(err, &te), errors.As(err, &ue)
	if isToken == isUpstream || errors.Is(err, ErrTokenRejected) != isToken || errors.Is(err, ErrUpstream) != isUpstream {
		t.Fatalf("error %v (%T): want exactly one of *TokenError and *UpstreamError, with its sentinel", err, err)
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err)} {
		for i := 0; i+leakWindow <= len(fuzzToken); i++ {
			if strings.Contains(s, fuzzToken[i:i+leakWindow]) {
				t.Fatalf("error reveals (part of) the token: %q", s)
			}
		}
		if !utf8.ValidString(s) {
			t.Fatalf("error text is not UTF-8: %q", s)
		}
		for _, r := range s {
			if !unicode.IsPrint(r) {
				t.Fatalf("error text has %U: %q", r, s)
			}
		}
	}
	if ue != nil && (ue.RetryAfter < 0 || len(ue.ErrorCode) > 64) {
		t.Fatalf("upstream error %+v", ue)
	}
	return te, ue
}

// refAnswer is an introspection answer as an exact-name reader sees it.
type refAnswer struct {
	ok     bool // one JSON object, distinct names, active a boolean, members of the right types
	result Result
}

// readRefAnswer reads body per RFC 7662 §2.2 with exact member names. Like
// the client, it refuses an object in which two member names, at any depth,
// are equal under case folding (issue 12, defect 7): encoding/json, which
// Principal.Claims uses, would read them as one.
func readRefAnswer(body []byte) refAnswer {
	if !uniqueNames(body, true) {
		return refAnswer{}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return refAnswer{}
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, _ := dec.Token()
		var raw json.RawMessage
		_ = dec.Decode(&raw)
		m[tok.(string)] = raw
	}
	var active *bool
	if json.Unmarshal(m["active"], &active) != nil || active == nil {
		return refAnswer{}
	}
	r := Result{Active: *active, Raw: json.RawMessage(bytes.TrimSpace(body))}
	if !r.Active {
		return refAnswer{ok: true, result: r}
	}
	var scope string
	for name, dst := range map[string]*string{
		"client_id": &r.ClientID, "username": &r.Username, "token_type": &r.TokenType, "token_use": &r.TokenUse,
		"sub": &r.Subject, "iss": &r.Issuer, "jti": &r.TokenID, "scope": &scope,
	} {
		var v *string
		if raw, ok := m[name]; ok && json.Unmarshal(raw, &v) != nil {
			return refAnswer{}
		}
		if v != nil {
			*dst = *v
		}
	}
	for _, s := range strings.Split(scope, " ") {
		if s != "" {
			r.Scope = append(r.Scope, s)
		}
	}
	if raw, ok := m["aud"]; ok && string(raw) != "null" {
		var one string
		var list []string
		switch {
		case json.Unmarshal(raw, &one) == nil:
			r.Audience = []string{one}
		case json.Unmarshal(raw, &list) == nil:
			r.Audience = list
		default:
			return refAnswer{}
		}
	}
	for name, dst := range map[string]*time.Time{"exp": &r.Expiry, "iat": &r.IssuedAt, "nbf": &r.NotBefore} {
		raw, ok := m[name]
		if !ok || string(raw) == "null" {
			continue
		}
		var f float64 // a JSON number; a string is refused
		if json.Unmarshal(raw, &f) != nil || math.IsNaN(f) || math.Abs(f) > 1e15 {
			return refAnswer{}
		}
		sec, frac := math.Modf(f)
		*dst = time.Unix(int64(sec), int64(frac*1e9))
	}
	return refAnswer{ok: true, result: r}
}

// acceptable says whether an active answer passes the checks the client
// documents for its configuration (fuzzIssuer, fuzzAudience, fuzzLeeway).
func acceptable(r *Result, now time.Time) bool {
	switch {
	case strings.EqualFold(r.TokenType, "refresh_token"):
	case r.TokenUse != "" && r.TokenUse != "access_token":
	case !r.Expiry.IsZero() && !now.Before(r.Expiry.Add(fuzzLeeway)):
	case !r.NotBefore.IsZero() && now.Add(fuzzLeeway).Before(r.NotBefore):
	case r.Issuer != "" && r.Issuer != fuzzIssuer:
	case r.Audience != nil && !slices.Contains(r.Audience, fuzzAudience):
	default:
		return true
	}
	return false
}

// checkResult compares what Introspect returned for a 200 answer object
// with what the exact-name reader makes of it.
func checkResult(t *testing.T, obj []byte, r *Result, err error) {
	t.Helper()
	ref := readRefAnswer(obj)
	switch {
	case ref.ok && err != nil && errors.Is(err, ErrBadResponse) && jwt.CheckObject(obj) != nil:
		// The strict scanner refuses some JSON encoding/json takes (see
		// internal/jwt/scan.go): a malformed answer, never accepted.
	case !ref.ok:
		if _, ue := checkIntrospectError(t, err); ue == nil || !errors.Is(err, ErrBadResponse) {
			t.Fatalf("answer %q: got %+v, %v; want ErrBadResponse", obj, r, err)
		}
	case !ref.result.Active:
		if err != nil || !reflect.DeepEqual(*r, ref.result) {
			t.Fatalf("inactive answer %q: got %+v, %v; want only Active false and Raw", obj, r, err)
		}
	case !acceptable(&ref.result, fuzzNow):
		if te, _ := checkIntrospectError(t, err); te == nil {
			t.Fatalf("answer %q that fails validation: got %+v, %v; want a TokenError", obj, r, err)
		}
	default:
		if err != nil {
			t.Fatalf("valid active answer %q refused: %v", obj, err)
		}
		if !reflect.DeepEqual(*r, ref.result) {
			t.Fatalf("answer %q:\n got %+v\nwant %+v", obj, *r, ref.result)
		}
	}
}

// FuzzIntrospectResponse sends one token through Introspect against a server
// whose answer (status, Content-Type, Retry-After, body) is fuzzed. Any
// "{token}" in the body is the token, echoed. Introspect never panics and
// returns a result or an error, never both. Every error is a *TokenError or
// an *UpstreamError (matching its sentinel only), never contains 16 bytes of
// the token, and has no control, line-separator or bidi character. A non-200
// answer is an UpstreamError (ErrCredentialsRejected for 401/403), except a
// 400 whose error is unsupported_token_type, which is a TokenError. A 200
// answer whose Content-Type is not JSON is ErrBadResponse. Otherwise, the
// outcome is the one an exact-name reader of RFC 7662 §2.2 derives: a
// malformed object (duplicate names, active missing or not a boolean, a
// member of the wrong type) is ErrBadResponse, an inactive answer is only
// Active false and Raw, an active one failing the configured checks
// (refresh token, token_use, exp/nbf with leeway, iss, aud) a TokenError,
// and any other is accepted with exactly the members the reader read.
func FuzzIntrospectResponse(f *testing.F) {
	for _, s := range []struct {
		status      uint16
		ctype, body string
	}{
		{200, "application/json", `{"active":true,"sub":"alice","scope":"read write","iss":"https://as.example","aud":["https://rs.example","x"],"exp":1700003600,"iat":1699999000,"nbf":1700000003,"client_id":"c","username":"u","token_type":"Bearer","jti":"j","ext":{"a":1}}`},
		{200, "application/json", `{"active":false}`},
		{200, "application/json; charset=utf-8", ` {"active":false,"sub":"ignored"} `},
		{200, "application/problem+json", `{"active":true,"exp":1699999996.5}`},
		{200, "", `{"active":true,"nbf":1700000004.999}`},
		{200, "text/html", `{"active":true}`},
		{200, "application/json", `{"active":"true"}`},
		{200, "application/json", `{"ACTIVE":true}`},
		{200, "application/json", `{"active":true,"active":false}`},
		{200, "application/json", `{"active":true} {"active":false}`},
		{200, "application/json", `{"active":true}}`},
		{200, "application/json", `{"active":true,"token_type":"Refresh_Token"}`},
		{200, "application/json", `{"active":true,"token_type":"bearer","token_use":"refresh_token"}`},
		{200, "application/json", `{"active":true,"iss":"{token}"}`},
		{200, "application/json", `{"active":true,"aud":"{token}"}`},
		{200, "application/json", `{"active":true,"{token}":1,"{token}":2}`},
		{200, "application/json", `{"active":true,"iss":"https://evil.example\u2028\u202e\u0085"}`},
		{200, "application/json", `{"active":true,"aud":[null]}`},
		{200, "application/json", `{"active":true,"ext":[{"workspace":"a","workſpace":"b"}]}`},
		{200, "application/json", `{"active":true,"aud":[]}`},
		{200, "application/json", `{"active":true,"exp":1e400}`},
		{200, "application/json", `{"active":true,"exp":"1700003600"}`},
		{200, "application/json", `{"active":true,"exp":1099511627776}`},
		{200, "application/json", `{"active":true,"scope":["read"]}`},
		{400, "application/json", `{"error":"unsupported_token_type"}`},
		{400, "application/json", `{"error":"invalid_request","error_description":"{token}"}`},
		{400, "application/json", `{"error":"{token}"}`},
		{401, "application/json", `{"error":"invalid_client"}`},
		{429, "application/json", `{"error":"rate_limited"}`},
		{503, "text/plain", "down: {token}"},
		{302, "", ""},
	} {
		f.Add(s.status, s.ctype, "", []byte(s.body))
	}
	f.Add(uint16(503), "application/json", "120", []byte(`{}`))
	f.Add(uint16(429), "application/json", "Wed, 21 Oct 2015 07:28:00 GMT", []byte(`{}`))
	f.Fuzz(func(t *testing.T, status uint16, ctype, retryAfter string, body []byte) {
		body = bytes.ReplaceAll(body, []byte(fuzzPlaceholder), []byte(fuzzToken))
		st := int(status)
		if st < 100 || st > 599 {
			st = 200
		}
		header := http.Header{}
		if ctype != "" {
			header.Set("Content-Type", ctype)
		}
		if retryAfter != "" {
			header.Set("Retry-After", retryAfter)
		}
		c, err := New(Config{
			Endpoint: "https://as.example/introspect", ClientID: "rs", ClientSecret: "secret",
			TrustedIssuers: []string{fuzzIssuer}, Audiences: []string{fuzzAudience},
			HTTPClient: &http.Client{Transport: &cannedTransport{st, header, body}},
			Now:        func() time.Time { return fuzzNow }, Leeway: fuzzLeeway,
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Introspect(context.Background(), fuzzToken)
		if (r == nil) == (err == nil) {
			t.Fatalf("result %+v and error %v: want one", r, err)
		}
		if err != nil {
			checkIntrospectError(t, err)
		}
		switch mt, _, mtErr := mime.ParseMediaType(ctype); {
		case st == 400:
			te, ue := checkIntrospectError(t, err)
			if te != nil && !bytes.Contains(body, []byte("unsupported_token_type")) {
				t.Fatalf("400 %q answered as a verdict on the token: %v", body, err)
			}
			if ue != nil && ue.StatusCode != 400 {
				t.Fatalf("400 reported as %d", ue.StatusCode)
			}
		case st != 200:
			if _, ue := checkIntrospectError(t, err); ue == nil || ue.StatusCode != st ||
				errors.Is(err, ErrCredentialsRejected) != (st == 401 || st == 403) {
				t.Fatalf("status %d: got %v", st, err)
			}
		case ctype != "" && (mtErr != nil || mt != "application/json" && !strings.HasSuffix(mt, "+json")):
			if _, ue := checkIntrospectError(t, err); ue == nil || !errors.Is(err, ErrBadResponse) {
				t.Fatalf("200 with Content-Type %q: got %+v, %v; want ErrBadResponse", ctype, r, err)
			}
		case len(body) > defaultMaxBytes:
			checkIntrospectError(t, err)
		default:
			checkResult(t, body, r, err)
		}
	})
}

// FuzzJWTResponse fuzzes RFC 9701 answers: a header and claims set, signed
// with the key the client trusts (mode 0) or another key (1), unsigned
// (2: header.claims. ), or the claims text sent as the whole body (3).
// "{token}" in either stands for the token. Introspect never panics and
// returns a result or an error with the guarantees of every Introspect
// error. Nothing but an answer signed with the trusted key is ever
// accepted, and one is accepted only when an exact-name reading of it
// shows alg ES256, typ token-introspection+jwt (application/ optional,
// any case), no crit, iss the configured issuer, aud including the client
// id, iat within five minutes of now, and token_introspection an object;
// that object then decides the outcome exactly as a plain JSON answer does.
func FuzzJWTResponse(f *testing.F) {
	const hdr = `{"alg":"ES256","kid":"k1","typ":"token-introspection+jwt"}`
	claims := func(ti string) string {
		return `{"iss":"https://as.example","aud":"rs-1","iat":1700000000,"token_introspection":` + ti + `}`
	}
	active := `{"active":true,"sub":"alice","scope":"read","exp":1700003600,"iss":"https://as.example","aud":"https://rs.example"}`
	for _, s := range []struct {
		header, claims string
		mode           uint8
	}{
		{hdr, claims(active), 0},
		{hdr, claims(`{"active":false}`), 0},
		{hdr, claims(`{"active":true,"exp":1699990000}`), 0},
		{hdr, claims(active), 1},
		{hdr, claims(active), 2},
		{`{"alg":"none","typ":"token-introspection+jwt"}`, claims(active), 2},
		{hdr, claims(active), 3},
		{`{"alg":"ES256","kid":"k1","typ":"Application/Token-Introspection+JWT"}`, claims(active), 0},
		{`{"alg":"ES256","kid":"k1","typ":"JWT"}`, claims(active), 0},
		{`{"alg":"ES256","kid":"k1","typ":"token-introspection+jwt","crit":["exp"]}`, claims(active), 0},
		{`{"alg":"ES256","typ":"token-introspection+jwt"}`, claims(active), 0},
		{`{"alg":"ES256","kid":"k9","typ":"token-introspection+jwt"}`, claims(active), 0},
		{`{"alg":"ES384","kid":"k1","typ":"token-introspection+jwt"}`, claims(active), 0},
		{hdr, `{"iss":"https://as.example","aud":["x","rs-1"],"iat":1700000299,"token_introspection":` + active + `}`, 0},
		{hdr, `{"iss":"https://as.example","aud":"rs-1","iat":1699999000,"token_introspection":` + active + `}`, 0},
		{hdr, `{"iss":"{token}","aud":"rs-1","iat":1700000000,"token_introspection":` + active + `}`, 0},
		{hdr, `{"iss":"https://as.example","aud":"rs-1","iat":1700000000,"token_introspection":"{\"active\":true}"}`, 0},
		{hdr, `{"iss":"https://as.example","aud":"rs-1","iat":1700000000}`, 0},
		{hdr, `{"iss":"https://as.example","aud":"rs-1","iat":1700000000,"token_introspection":{"active":true},"token_introspection":{"active":false}}`, 0},
		{hdr, `{"iss":"https://as.example","Iss":"x","aud":"rs-1","iat":1700000000,"token_introspection":{"active":true}}`, 0},
		{hdr, claims(`{"active":true,"sub":"a","SUB":"b"}`), 0},
	} {
		f.Add(s.header, s.claims, s.mode)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	b64 := base64.RawURLEncoding
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		f.Fatal(err)
	}
	pt := pub.Bytes()
	jwksDoc := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":%q,"y":%q}]}`,
		b64.EncodeToString(pt[1:33]), b64.EncodeToString(pt[33:]))
	set, err := jwks.New(context.Background(), "https://as.example/jwks", jwks.Options{
		HTTPClient: &http.Client{Transport: &cannedTransport{200, http.Header{"Content-Type": {"application/json"}}, []byte(jwksDoc)}},
		Now:        func() time.Time { return fuzzNow },
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(set.Close)
	sign := func(k *ecdsa.PrivateKey, in string) string {
		d := sha256.Sum256([]byte(in))
		r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			f.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return in + "." + b64.EncodeToString(sig)
	}

	f.Fuzz(func(t *testing.T, header, claims string, mode uint8) {
		header = strings.ReplaceAll(header, fuzzPlaceholder, fuzzToken)
		claims = strings.ReplaceAll(claims, fuzzPlaceholder, fuzzToken)
		in := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(claims))
		var body string
		switch mode % 4 {
		case 0:
			body = sign(key, in)
		case 1:
			body = sign(other, in)
		case 2:
			body = in + "."
		case 3:
			body = claims
		}
		c, err := New(Config{
			Endpoint: "https://as.example/introspect", ClientID: fuzzClientID, ClientSecret: "secret",
			TrustedIssuers: []string{fuzzIssuer}, Audiences: []string{fuzzAudience},
			ResponseKeys: set, ResponseIssuer: fuzzIssuer,
			HTTPClient: &http.Client{Transport: &cannedTransport{200, http.Header{"Content-Type": {jwtResponseType}}, []byte(body)}},
			Now:        func() time.Time { return fuzzNow }, Leeway: fuzzLeeway,
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Introspect(context.Background(), fuzzToken)
		if (r == nil) == (err == nil) {
			t.Fatalf("result %+v and error %v: want one", r, err)
		}
		if err != nil {
			checkIntrospectError(t, err)
		}
		ti, verdict := refJWTAnswer(header, claims)
		switch _, strictErr := jwt.Parse(body); {
		case mode%4 == 0 && verdict == "" && strictErr != nil:
			// The strict JWT parser refuses some JSON encoding/json takes
			// (see internal/jwt/scan.go): a malformed answer, never accepted.
			if err == nil || !errors.Is(err, ErrBadResponse) {
				t.Fatalf("answer the JWT parser refuses (%v): got %+v, %v; want ErrBadResponse", strictErr, r, err)
			}
		case mode%4 != 0 || verdict != "":
			if err == nil || !errors.Is(err, ErrUpstream) {
				why := verdict
				if mode%4 != 0 {
					why = fmt.Sprintf("mode %d: not signed with the trusted key", mode%4)
				}
				t.Fatalf("answer (header %q, claims %q) accepted (%+v, %v), but %s", header, claims, r, err, why)
			}
		default:
			checkResult(t, ti, r, err)
		}
	})
}

// refJWTAnswer reads an RFC 9701 header and claims set with exact member
// names and returns the token_introspection object, or why the answer must
// be refused.
func refJWTAnswer(header, claims string) (ti []byte, refuse string) {
	var h, c map[string]json.RawMessage
	if !uniqueNames([]byte(header), true) || json.Unmarshal([]byte(header), &h) != nil {
		return nil, "the header is not one object with member names distinct under case folding"
	}
	if !uniqueNames([]byte(claims), true) || json.Unmarshal([]byte(claims), &c) != nil {
		return nil, "the claims are not one object with member names distinct under case folding"
	}
	str := func(m map[string]json.RawMessage, name string) (string, bool) {
		var s string
		err := json.Unmarshal(m[name], &s)
		return s, err == nil
	}
	if alg, _ := str(h, "alg"); alg != "ES256" {
		return nil, "alg is not ES256"
	}
	if kid, ok := str(h, "kid"); h["kid"] != nil && (!ok || kid != "k1") {
		return nil, "kid is not k1"
	}
	if typ, _ := str(h, "typ"); strings.TrimPrefix(strings.ToLower(typ), "application/") != "token-introspection+jwt" {
		return nil, "typ is not token-introspection+jwt"
	}
	if _, crit := h["crit"]; crit {
		return nil, "there is a crit header"
	}
	if iss, _ := str(c, "iss"); iss != fuzzIssuer {
		return nil, "iss is not the configured issuer"
	}
	var aud []string
	if one, ok := str(c, "aud"); ok {
		aud = []string{one}
	} else if json.Unmarshal(c["aud"], &aud) != nil {
		return nil, "aud is neither a string nor an array of strings"
	}
	if !slices.Contains(aud, fuzzClientID) {
		return nil, "aud lacks the client id"
	}
	var iat float64
	if raw := c["iat"]; len(raw) == 0 || raw[0] == '"' || json.Unmarshal(raw, &iat) != nil {
		return nil, "iat is not a number"
	}
	if d := float64(fuzzNow.Unix()) - iat; d > 300 || d < -300 {
		return nil, "iat is more than five minutes from now"
	}
	ti = bytes.TrimSpace(c["token_introspection"])
	if len(ti) == 0 || ti[0] != '{' {
		return nil, "token_introspection is not an object"
	}
	return ti, ""
}

// uniqueNames reports whether b is valid JSON in which no object has two
// members of the same name, or with fold of names equal under case folding
// (strings.EqualFold, which folds as encoding/json does).
func uniqueNames(b []byte, fold bool) bool {
	if !json.Valid(b) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		names  []string
		object bool
		key    bool // the next token is a member name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].key = true
				}
				continue
			}
			name := tok.(string)
			for _, prev := range top.names {
				if prev == name || fold && strings.EqualFold(prev, name) {
					return false
				}
			}
			top.names = append(top.names, name)
			top.key = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, key: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the enclosing object expects a name next.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
	}
}
