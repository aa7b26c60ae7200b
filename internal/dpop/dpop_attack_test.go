package dpop

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Every test here is an attacker's attempt: a proof that must be refused,
// and for what reason (the text the error must hold).

type attack struct {
	name string
	alg  string              // default ES256
	edit func(*spec)         // changes the proof before it is minted
	opts func(*Options)      // changes the options
	raw  func(string) string // changes the minted proof
	why  string              // what the error must say
}

func runAttacks(t *testing.T, cases []attack) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			alg := tc.alg
			if alg == "" {
				alg = "ES256"
			}
			s := newSpec(t, alg)
			if tc.edit != nil {
				tc.edit(s)
			}
			proof := s.mint(t)
			if tc.raw != nil {
				proof = tc.raw(proof)
			}
			o := testOptions()
			if tc.opts != nil {
				tc.opts(&o)
			}
			p, err := Verify(proof, o)
			if p != nil {
				t.Errorf("a Proof with the error: %+v", p)
			}
			wantCode(t, err, CodeInvalidProof, tc.why)
			if !oneOf(err) {
				t.Errorf("error %v is in more than one category", err)
			}
			msg := err.Error()
			if i := strings.LastIndexByte(proof, '.'); i >= 0 && len(proof)-i > 8 && strings.Contains(msg, proof[i+1:]) {
				t.Errorf("error holds the proof's signature: %s", msg)
			}
			if strings.Contains(msg, testToken) {
				t.Errorf("error holds the access token: %s", msg)
			}
		})
	}
}

// RFC 9449 §4.3 check 2: exactly one JWS compact serialization.
func TestAttackNotAJWS(t *testing.T) {
	jwe := "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.ZW5j.aXY.Y2lwaGVy.dGFn"
	runAttacks(t, []attack{
		{name: "empty", raw: func(string) string { return "" }, why: "parts"},
		{name: "one part", raw: func(p string) string { return strings.ReplaceAll(p, ".", "") }, why: "parts"},
		{name: "two parts", raw: func(p string) string { return p[:strings.LastIndexByte(p, '.')] }, why: "parts"},
		{name: "JWE compact", raw: func(string) string { return jwe }, why: "5 parts"},
		{name: "four parts", raw: func(p string) string { return p + ".c2ln" }, why: "4 parts"},
		{name: "trailing dot", raw: func(p string) string { return p + "." }, why: "parts"},
		{name: "JSON serialization", raw: func(p string) string {
			parts := strings.Split(p, ".")
			return `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`
		}, why: "parts"},
		{name: "empty signature (unsecured)", raw: func(p string) string { return p[:strings.LastIndexByte(p, '.')+1] }, why: "empty part"},
		{name: "leading space", raw: func(p string) string { return " " + p }, why: "base64url"},
		{name: "DPoP scheme prefix", raw: func(p string) string { return "DPoP " + p }, why: "base64url"},
		{name: "padded signature", raw: func(p string) string { return p + "==" }, why: "base64url"},
		{name: "standard alphabet", alg: "EdDSA", raw: func(p string) string {
			// EdDSA signs deterministically: this proof has '-' or '_'.
			if !strings.ContainsAny(p, "-_") {
				panic("no '-' or '_' in the proof")
			}
			return strings.NewReplacer("-", "+", "_", "/").Replace(p)
		}, why: "base64url"},
		{name: "header not an object", raw: func(p string) string {
			return b64.EncodeToString([]byte(`["dpop+jwt"]`)) + p[strings.IndexByte(p, '.'):]
		}, why: "'{'"},
		{name: "claims not an object", edit: func(s *spec) { s.editClaims = func(string) string { return `"claims"` } }, why: "not a JSON object"},
		{name: "header with trailing data", edit: func(s *spec) { s.editHeader = func(h string) string { return h + "{}" } }, why: "after the top-level object"},
		{name: "proof over 8 KiB", edit: func(s *spec) { s.claims["pad"] = strings.Repeat("a", MaxProofSize) }, why: "over 8192"},
	})
}

// RFC 9449 §4.3 check 4: typ is dpop+jwt (explicit typing, RFC 8725 §3.11).
func TestAttackTyp(t *testing.T) {
	var cases []attack
	for _, typ := range []any{nil, "", "JWT", "jwt", "at+jwt", "application/at+jwt", "dpop", "jwt+dpop",
		"dpop+jwt; charset=utf-8", " dpop+jwt", "dpop+jwt ", "application/dpop+jwt/x", "text/dpop+jwt", "dpop+jwt\u0000"} {
		cases = append(cases, attack{name: fmt.Sprintf("%q", typ), edit: func(s *spec) {
			if typ == nil {
				delete(s.header, "typ")
			} else {
				s.header["typ"] = typ
			}
		}, why: "is not dpop+jwt"})
	}
	cases = append(cases, attack{name: "not a string", edit: func(s *spec) { s.header["typ"] = 1 }, why: "typ is not a string"})
	runAttacks(t, cases)
}

// RFC 7515 §4.1.9: typ is a media type, compared case-insensitively, with
// "application/" implied.
func TestTypSpellingsOfTheMediaType(t *testing.T) {
	for _, typ := range []string{"dpop+jwt", "DPoP+JWT", "DPOP+jwt", "application/dpop+jwt", "Application/DPoP+JWT"} {
		s := newSpec(t, "ES256")
		s.header["typ"] = typ
		if _, err := Verify(s.mint(t), testOptions()); err != nil {
			t.Errorf("typ %q: %v", typ, err)
		}
	}
}

// RFC 9449 §4.3 check 5: an asymmetric algorithm from the allow-list.
func TestAttackAlgorithm(t *testing.T) {
	runAttacks(t, []attack{
		{name: "none", edit: func(s *spec) { s.header["alg"] = "none" }, why: `alg "none" is not allowed`},
		{name: "None", edit: func(s *spec) { s.header["alg"] = "None" }, why: "is not allowed"},
		{name: "HS256 keyed with the public key", edit: func(s *spec) {
			// The classic confusion: HMAC keyed with the public key's bytes.
			s.header["alg"] = "HS256"
			s.alg = "HS256"
		}, why: `alg "HS256" is not allowed`},
		{name: "HS256 even when listed", edit: func(s *spec) { s.header["alg"] = "HS256" },
			opts: func(o *Options) { o.Algorithms = []string{"HS256", "ES256"} }, why: `alg "HS256" is not allowed`},
		{name: "ES256K", edit: func(s *spec) { s.header["alg"] = "ES256K" }, why: "is not allowed"},
		{name: "lower case es256", edit: func(s *spec) { s.header["alg"] = "es256" }, why: "is not allowed"},
		{name: "RSA-OAEP (encryption)", edit: func(s *spec) { s.header["alg"] = "RSA-OAEP" }, why: "is not allowed"},
		{name: "not in the allow-list", opts: func(o *Options) { o.Algorithms = []string{"EdDSA", "RS256"} }, why: `alg "ES256" is not allowed`},
		{name: "absent", edit: func(s *spec) { delete(s.header, "alg") }, why: "no alg"},
		{name: "not a string", edit: func(s *spec) { s.header["alg"] = []string{"ES256"} }, why: "alg is not a string"},
	})
}

// RFC 7515 §4.1.11: no extension is understood, so any crit is refused.
func TestAttackCrit(t *testing.T) {
	runAttacks(t, []attack{
		{name: "crit exp", edit: func(s *spec) { s.header["crit"] = []string{"exp"}; s.header["exp"] = 1 }, why: "crit"},
		{name: "crit b64", edit: func(s *spec) { s.header["crit"] = []string{"b64"}; s.header["b64"] = false }, why: "crit"},
		{name: "empty crit", edit: func(s *spec) { s.header["crit"] = []string{} }, why: "crit"},
		{name: "crit a string", edit: func(s *spec) { s.header["crit"] = "exp" }, why: "crit"},
	})
}

// The key is the jwk: a header that also names or carries another key is
// refused, so no verifier can read the proof with a different key.
func TestAttackOtherKeyLocators(t *testing.T) {
	runAttacks(t, []attack{
		{name: "jku", edit: func(s *spec) { s.header["jku"] = "https://evil.example/jwks" }, why: "jku is not allowed"},
		{name: "x5u", edit: func(s *spec) { s.header["x5u"] = "https://evil.example/cert" }, why: "x5u is not allowed"},
		{name: "x5c", edit: func(s *spec) { s.header["x5c"] = []string{"MIIB"} }, why: "x5c is not allowed"},
		{name: "null x5c", edit: func(s *spec) { s.header["x5c"] = nil }, why: "x5c is not allowed"},
	})
}

// RFC 9449 §4.3 checks 5 to 7: the jwk is a public key of a type that
// fits alg, with nothing private in it, canonically encoded.
func TestAttackJWK(t *testing.T) {
	setJWK := func(v any) func(*spec) { return func(s *spec) { s.header["jwk"] = v } }
	member := func(name string, v any) func(*spec) { return func(s *spec) { s.jwk()[name] = v } }
	var cases []attack
	for _, name := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
			cases = append(cases, attack{name: "private " + name + " " + alg, alg: alg, edit: member(name, "AQAB"), why: fmt.Sprintf("private member %q", name)})
		}
	}
	cases = append(cases,
		attack{name: "absent", edit: func(s *spec) { delete(s.header, "jwk") }, why: "no jwk"},
		attack{name: "null", edit: setJWK(nil), why: "no jwk"},
		attack{name: "a string", edit: setJWK("eyJrdHkiOiJFQyJ9"), why: "jwk is not a JSON object"},
		attack{name: "an array", edit: setJWK([]any{map[string]any{"kty": "EC"}}), why: "jwk is not a JSON object"},
		attack{name: "empty object", edit: setJWK(map[string]any{}), why: "jwk"},
		attack{name: "over 2 KiB", edit: member("pad", strings.Repeat("a", MaxJWKSize)), why: "over 2048"},
		attack{name: "private d escaped", edit: func(s *spec) {
			s.editHeader = replace(`"kty":"EC"`, `"kty":"EC","\u0064":"AQAB"`)
		}, why: `private member "d"`},
		attack{name: "symmetric oct with k", edit: setJWK(map[string]any{"kty": "oct", "k": "c2VjcmV0"}), why: `private member "k"`},
		attack{name: "symmetric oct", edit: setJWK(map[string]any{"kty": "oct"}), why: `key type "oct"`},
		attack{name: "unknown kty", edit: member("kty", "XYZ"), why: `key type "XYZ"`},
		attack{name: "kty lower case", edit: member("kty", "ec"), why: `key type "ec"`},
		attack{name: "use enc", edit: member("use", "enc"), why: "use"},
		attack{name: "key_ops without verify", edit: member("key_ops", []string{"sign"}), why: "key_ops"},
		attack{name: "its own alg differs", edit: member("alg", "ES384"), why: "jwk alg"},
		attack{name: "its own alg HS256", edit: member("alg", "HS256"), why: "jwk alg"},
		attack{name: "RSA 1024", alg: "RS256", edit: func(s *spec) {
			s.signer = key("rsa1024")
			s.header["jwk"] = jwkOf(s.signer.Public())
		}, why: "1024 bits"},
		attack{name: "EC key for EdDSA", alg: "EdDSA", edit: func(s *spec) { s.header["jwk"] = jwkOf(key("p256").Public()) }, why: "does not fit"},
		attack{name: "RSA key for ES256", edit: func(s *spec) { s.header["jwk"] = jwkOf(key("rsa2048").Public()) }, why: "does not fit"},
		attack{name: "P-384 key for ES256", edit: func(s *spec) {
			s.signer = key("p384")
			s.header["jwk"] = jwkOf(s.signer.Public())
		}, why: "does not fit"},
		attack{name: "Ed25519 key for RS256", alg: "RS256", edit: func(s *spec) { s.header["jwk"] = jwkOf(key("ed25519").Public()) }, why: "does not fit"},
		attack{name: "Ed25519 identity (small order)", alg: "EdDSA", edit: member("x", b64.EncodeToString(append([]byte{1}, make([]byte, 31)...))), why: "small order"},
		attack{name: "Ed25519 of 31 bytes", alg: "EdDSA", edit: member("x", b64.EncodeToString(make([]byte, 31))), why: "jwk"},
		attack{name: "X25519", alg: "EdDSA", edit: member("crv", "X25519"), why: "jwk"},
		attack{name: "Ed448", alg: "EdDSA", edit: member("crv", "Ed448"), why: "jwk"},
		attack{name: "EC point off the curve", edit: member("y", b64.EncodeToString(make([]byte, 32))), why: "jwk"},
		attack{name: "EC crv secp256k1", edit: member("crv", "secp256k1"), why: "jwk"},
		attack{name: "EC without y", edit: func(s *spec) { delete(s.jwk(), "y") }, why: "jwk"},
		attack{name: "RSA n with a leading zero", alg: "RS256", edit: func(s *spec) {
			n := s.signer.Public().(*rsa.PublicKey).N.Bytes()
			s.jwk()["n"] = b64.EncodeToString(append([]byte{0}, n...))
		}, why: "not canonically encoded"},
		attack{name: "RSA e with a leading zero", alg: "RS256", edit: member("e", "AAEAAQ"), why: "not canonically encoded"},
		attack{name: "EC x with a leading zero", edit: func(s *spec) {
			x := s.signer.Public().(*ecdsa.PublicKey).X.FillBytes(make([]byte, 32))
			s.jwk()["x"] = b64.EncodeToString(append([]byte{0}, x...))
		}, why: "jwk"},
		attack{name: "RSA n padded", alg: "RS256", edit: func(s *spec) {
			n := b64.EncodeToString(s.signer.Public().(*rsa.PublicKey).N.Bytes())
			s.jwk()["n"] = n + strings.Repeat("=", (4-len(n)%4)%4)
		}, why: "jwk"},
		attack{name: "RSA n in the standard alphabet", alg: "RS256", edit: func(s *spec) {
			n := b64.EncodeToString(s.signer.Public().(*rsa.PublicKey).N.Bytes())
			if !strings.ContainsAny(n, "-_") {
				panic("n has neither - nor _")
			}
			s.jwk()["n"] = strings.NewReplacer("-", "+", "_", "/").Replace(n)
		}, why: "jwk"},
		attack{name: "member not a string", edit: member("x", 12), why: "jwk"},
	)
	runAttacks(t, cases)
}

// RFC 9449 §4.3 check 6: the signature verifies with the jwk, and with
// nothing else.
func TestAttackSignature(t *testing.T) {
	sigOf := func(p string) []byte {
		b, err := b64.DecodeString(p[strings.LastIndexByte(p, '.')+1:])
		if err != nil {
			panic(err) // a minted proof: not reached
		}
		return b
	}
	withSig := func(p string, sig []byte) string {
		return p[:strings.LastIndexByte(p, '.')+1] + b64.EncodeToString(sig)
	}
	cases := []attack{
		{name: "signed by another key", edit: func(s *spec) { s.signer = key("p256-other") }, why: "signature verification failed"},
		{name: "jwk swapped for the attacker's", edit: func(s *spec) { s.header["jwk"] = jwkOf(key("p256-other").Public()) }, why: "signature verification failed"},
		{name: "truncated signature", raw: func(p string) string { return withSig(p, sigOf(p)[:63]) }, why: "signature verification failed"},
		{name: "zero signature", raw: func(p string) string { return withSig(p, make([]byte, 64)) }, why: "signature verification failed"},
		{name: "claims changed after signing", raw: func(p string) string {
			parts := strings.Split(p, ".")
			c, _ := b64.DecodeString(parts[1])
			parts[1] = b64.EncodeToString([]byte(strings.Replace(string(c), `"jti":"e1j3V_bKic8-LAEB"`, `"jti":"e1j3V_bKic8-LAEC"`, 1)))
			return strings.Join(parts, ".")
		}, why: "signature verification failed"},
		{name: "RSA signature for ES256", raw: func(p string) string { return withSig(p, make([]byte, 256)) }, why: "signature verification failed"},
	}
	for _, alg := range []string{"RS256", "PS256", "EdDSA", "ES384"} {
		cases = append(cases, attack{name: "bit flipped " + alg, alg: alg, raw: func(p string) string {
			sig := sigOf(p)
			sig[len(sig)/2] ^= 1
			return withSig(p, sig)
		}, why: "signature verification failed"})
	}
	runAttacks(t, cases)
}

// An attacker's own key makes a valid proof, of the attacker's key: the
// thumbprint is what the caller compares with the token's cnf.jkt.
func TestAttackOwnKeyHasOwnThumbprint(t *testing.T) {
	victim := newSpec(t, "ES256")
	attacker := newSpec(t, "ES256")
	attacker.signer = priv(t, "p256-other")
	attacker.header["jwk"] = jwkOf(attacker.signer.Public())
	pv, err := Verify(victim.mint(t), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	pa, err := Verify(attacker.mint(t), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if pa.Thumbprint == pv.Thumbprint {
		t.Fatal("two keys, one thumbprint")
	}
}

// Duplicate member names, and names equal under case folding, at any
// depth: two readers would see two proofs (the last one wins in
// encoding/json and jwx, the first in others).
func TestAttackDuplicateMembers(t *testing.T) {
	header := func(text string) func(*spec) { return func(s *spec) { s.editHeader = prepend(text) } }
	claims := func(text string) func(*spec) { return func(s *spec) { s.editClaims = prepend(text) } }
	runAttacks(t, []attack{
		{name: "alg twice", edit: header(`"alg":"none"`), why: "duplicate"},
		{name: "typ twice", edit: header(`"typ":"JWT"`), why: "duplicate"},
		{name: "TYP and typ", edit: header(`"TYP":"JWT"`), why: "case folding"},
		{name: "jwk twice", edit: header(`"jwk":{"kty":"oct","k":"c2VjcmV0"}`), why: "duplicate"},
		{name: "jwk and jw\u212a (Kelvin sign)", edit: header(`"jw\u212a":{"kty":"oct"}`), why: "case folding"},
		{name: "jwk and escaped jwk", edit: header(`"\u006awk":{"kty":"oct"}`), why: "duplicate"},
		{name: "crv twice in the jwk", edit: func(s *spec) { s.editHeader = replace(`"crv":"P-256"`, `"crv":"P-256","crv":"P-384"`) }, why: "duplicate"},
		{name: "X and x in the jwk", edit: func(s *spec) { s.editHeader = replace(`"kty":"EC"`, `"kty":"EC","X":"AAAA"`) }, why: "case folding"},
		{name: "htm twice", edit: claims(`"htm":"GET"`), why: "duplicate"},
		{name: "HTM and htm", edit: claims(`"HTM":"GET"`), why: "case folding"},
		{name: "htu twice", edit: claims(`"htu":"https://evil.example/"`), why: "duplicate"},
		{name: "Htu and htu", edit: claims(`"Htu":"https://evil.example/"`), why: "case folding"},
		{name: "ath twice", edit: claims(`"ath":"x"`), why: "duplicate"},
		{name: "jti twice", edit: claims(`"jti":"other"`), why: "duplicate"},
		{name: "iat twice", edit: claims(`"iat":1`), why: "duplicate"},
		{name: "nonce and NONCE", edit: func(s *spec) { s.claims["nonce"] = "n"; s.editClaims = prepend(`"NONCE":"m"`) }, why: "case folding"},
		{name: "in a nested claim", edit: claims(`"x":{"a":1,"A":2}`), why: "case folding"},
	})
}

// RFC 9449 §4.2: jti is required, a non-empty string, here of bounded size.
func TestAttackJTI(t *testing.T) {
	runAttacks(t, []attack{
		{name: "absent", edit: func(s *spec) { delete(s.claims, "jti") }, why: "no jti"},
		{name: "empty", edit: func(s *spec) { s.claims["jti"] = "" }, why: "no jti"},
		{name: "null", edit: func(s *spec) { s.claims["jti"] = nil }, why: "no jti"},
		{name: "a number", edit: func(s *spec) { s.claims["jti"] = 42 }, why: "jti is not a string"},
		{name: "over 256 bytes", edit: func(s *spec) { s.claims["jti"] = strings.Repeat("j", MaxIDSize+1) }, why: "over 256"},
		{name: "invalid UTF-8", edit: func(s *spec) { s.editClaims = replace(`"jti":"e1j3V_bKic8-LAEB"`, "\"jti\":\"e1j3V\xff\"") }, why: "UTF-8"},
		{name: "lone surrogate", edit: func(s *spec) { s.editClaims = replace(`"jti":"e1j3V_bKic8-LAEB"`, `"jti":"e1j3V\ud800"`) }, why: "UTF-8"},
	})
	s := newSpec(t, "ES256")
	s.claims["jti"] = strings.Repeat("j", MaxIDSize)
	if _, err := Verify(s.mint(t), testOptions()); err != nil {
		t.Errorf("jti of %d bytes: %v", MaxIDSize, err)
	}
}

// RFC 9449 §4.3 check 8: htm is the request method, exactly (RFC 9110
// §9.1: methods are case-sensitive).
func TestAttackHTM(t *testing.T) {
	runAttacks(t, []attack{
		{name: "absent", edit: func(s *spec) { delete(s.claims, "htm") }, why: "no htm"},
		{name: "null", edit: func(s *spec) { s.claims["htm"] = nil }, why: "no htm"},
		{name: "another method", edit: func(s *spec) { s.claims["htm"] = "GET" }, why: `htm "GET" is not the request method "POST"`},
		{name: "lower case", edit: func(s *spec) { s.claims["htm"] = "post" }, why: "is not the request method"},
		{name: "with a space", edit: func(s *spec) { s.claims["htm"] = "POST " }, why: "is not the request method"},
		{name: "empty", edit: func(s *spec) { s.claims["htm"] = "" }, why: "is not the request method"},
		{name: "a list", edit: func(s *spec) { s.claims["htm"] = []string{"POST"} }, why: "htm: not a string"},
		{name: "lone surrogate", edit: func(s *spec) { s.editClaims = replace(`"htm":"POST"`, `"htm":"POST\udc00"`) }, why: "htm: escape of a lone surrogate"},
		{name: "proof for GET used for DELETE", edit: func(s *spec) { s.claims["htm"] = "GET" }, opts: func(o *Options) { o.Method = "DELETE" }, why: "is not the request method"},
	})
}

// RFC 9449 §4.3 check 9: htu is the request URI, ignoring query and
// fragment, after normalisation (the comparator's own table is in
// htu_test.go).
func TestAttackHTU(t *testing.T) {
	var cases []attack
	for _, htu := range []string{
		"http://rs.example/api/orders",
		"https://rs.example:8443/api/orders",
		"https://rs.example:80/api/orders",
		"https://rs.example/api/orders/",
		"https://rs.example/api/Orders",
		"https://rs.example/api//orders",
		"https://rs.example/api/orders%2F",
		"https://rs.example/api%2Forders",
		"https://rs.example.evil.example/api/orders",
		"https://evil.example/api/orders",
		"https://rs.example./api/orders",
		"https://rs.example/",
		"https://rs.example",
	} {
		cases = append(cases, attack{name: htu, edit: func(s *spec) { s.claims["htu"] = htu }, why: "is not the request URI"})
	}
	for _, htu := range []string{
		"https://evil.example@rs.example/api/orders",
		"https://rs.example@evil.example/api/orders",
		"/api/orders",
		"//rs.example/api/orders",
		"rs.example/api/orders",
		"wss://rs.example/api/orders",
		"https://rs.example/api/ord ers",
		"https://rs.example/api/orders\u00e9",
		"https://rs.example/api/%zzorders",
		"https://rs.example/api/orders\\",
		"https://[::1%25eth0]/api/orders",
		"https://rs.example:99999/api/orders",
		"",
	} {
		cases = append(cases, attack{name: "refused " + htu, edit: func(s *spec) { s.claims["htu"] = htu }, why: "htu: "})
	}
	cases = append(cases,
		attack{name: "absent", edit: func(s *spec) { delete(s.claims, "htu") }, why: "no htu"},
		attack{name: "a number", edit: func(s *spec) { s.claims["htu"] = 1 }, why: "htu: not a string"},
		attack{name: "proof for another resource", opts: func(o *Options) { o.URL = "https://rs.example/api/admin" }, why: "is not the request URI"},
	)
	runAttacks(t, cases)
}

// The equivalent spellings of the request URI are accepted.
func TestHTUEquivalentSpellings(t *testing.T) {
	for _, htu := range []string{
		"https://rs.example/api/orders",
		"HTTPS://RS.EXAMPLE/api/orders",
		"https://rs.example:443/api/orders",
		"https://rs.example:/api/orders",
		"https://rs.example/api/%6Frders",
		"https://rs.example/api/%6frders",
		"https://rs.example/api/./orders",
		"https://rs.example/x/../api/orders",
		"https://rs.example/api/%2e%2e/api/orders",
		"https://rs.example/api/orders?page=2",
		"https://rs.example/api/orders#top",
		"https://rs.example/api/orders?a=b#c?d",
	} {
		s := newSpec(t, "ES256")
		s.claims["htu"] = htu
		if _, err := Verify(s.mint(t), testOptions()); err != nil {
			t.Errorf("htu %q: %v", htu, err)
		}
	}
}

// RFC 9449 §4.3 check 11: iat within [Now-Window, Now+Skew].
func TestAttackIAT(t *testing.T) {
	at := func(d time.Duration) func(*spec) { return func(s *spec) { s.claims["iat"] = testNow.Add(d).Unix() } }
	runAttacks(t, []attack{
		{name: "absent", edit: func(s *spec) { delete(s.claims, "iat") }, why: "no iat"},
		{name: "null", edit: func(s *spec) { s.claims["iat"] = nil }, why: "no iat"},
		{name: "a string", edit: func(s *spec) { s.claims["iat"] = fmt.Sprint(testNow.Unix()) }, why: "iat: not a number"},
		{name: "older than the window", edit: at(-DefaultWindow - time.Second), why: "before now"},
		{name: "a day old", edit: at(-24 * time.Hour), why: "before now"},
		{name: "zero", edit: func(s *spec) { s.claims["iat"] = 0 }, why: "before now"},
		{name: "from the future beyond the skew", edit: at(DefaultSkew + time.Second), why: "after now"},
		{name: "a year ahead (pre-made proofs)", edit: at(365 * 24 * time.Hour), why: "after now"},
		{name: "huge", edit: func(s *spec) { s.claims["iat"] = 1e300 }, why: "iat: out of range"},
		{name: "older than a custom window", edit: at(-61 * time.Second), opts: func(o *Options) { o.Window = time.Minute }, why: "before now"},
		{name: "future with a negative skew", edit: at(time.Second), opts: func(o *Options) { o.Skew = -1 }, why: "after now"},
		{name: "future beyond a custom skew", edit: at(31 * time.Second), opts: func(o *Options) { o.Skew = 30 * time.Second }, why: "after now"},
	})
	for _, d := range []time.Duration{-DefaultWindow, -time.Minute, 0, DefaultSkew} {
		s := newSpec(t, "ES256")
		at(d)(s)
		if _, err := Verify(s.mint(t), testOptions()); err != nil {
			t.Errorf("iat now%+v: %v", d, err)
		}
	}
	s := newSpec(t, "ES256")
	s.claims["iat"] = float64(testNow.Unix()) + 0.5
	if _, err := Verify(s.mint(t), testOptions()); err != nil {
		t.Errorf("fractional iat: %v", err)
	}
}

// RFC 9449 §4.3 check 12: ath is base64url(SHA-256(the access token)).
func TestAttackATH(t *testing.T) {
	sum := sha256.Sum256([]byte(testToken))
	noToken := func(o *Options) { o.AccessToken = "" }
	runAttacks(t, []attack{
		{name: "absent", edit: func(s *spec) { delete(s.claims, "ath") }, why: "no ath"},
		{name: "null", edit: func(s *spec) { s.claims["ath"] = nil }, why: "no ath"},
		{name: "of another token", edit: func(s *spec) { s.claims["ath"] = athOf("another-token") }, why: "ath is not the hash"},
		{name: "of the token with its scheme", edit: func(s *spec) { s.claims["ath"] = athOf("DPoP " + testToken) }, why: "ath is not the hash"},
		{name: "padded", edit: func(s *spec) { s.claims["ath"] = athOf(testToken) + "=" }, why: "ath is not the hash"},
		{name: "hex", edit: func(s *spec) { s.claims["ath"] = hex.EncodeToString(sum[:]) }, why: "ath is not the hash"},
		{name: "the token itself", edit: func(s *spec) { s.claims["ath"] = testToken }, why: "ath is not the hash"},
		{name: "empty", edit: func(s *spec) { s.claims["ath"] = "" }, why: "ath is not the hash"},
		{name: "a number", edit: func(s *spec) { s.claims["ath"] = 1 }, why: "ath: not a string"},
		{name: "present without a token", opts: noToken, why: "ath present but no access token"},
		{name: "proof for another token", opts: func(o *Options) { o.AccessToken = "stolen-elsewhere" }, why: "ath is not the hash"},
	})
}

// RFC 9449 §8, §4.3 check 10: the server's nonce.
func TestAttackNonce(t *testing.T) {
	var got []string
	accept := func(n string) bool { got = append(got, n); return n == "server-nonce" }
	o := testOptions()
	o.Nonce = accept
	for _, tc := range []struct {
		name   string
		nonce  any // nil: absent
		want   error
		called bool
	}{
		{"absent", nil, ErrNonceMissing, false},
		{"empty", "", ErrNonceMissing, false},
		{"stale", "old-nonce", ErrNonceRejected, true},
		{"with a space", "server nonce", ErrNonceRejected, false},
		{"with a quote", `server"nonce`, ErrNonceRejected, false},
		{"non-ASCII", "server-nonc\u00e9", ErrNonceRejected, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			s := newSpec(t, "ES256")
			if tc.nonce != nil {
				s.claims["nonce"] = tc.nonce
			}
			p, err := Verify(s.mint(t), o)
			if p != nil || !errors.Is(err, tc.want) || !oneOf(err) {
				t.Fatalf("Verify = %v, %v; want %v", p, err, tc.want)
			}
			wantCode(t, err, CodeUseNonce, "")
			if (len(got) > 0) != tc.called {
				t.Errorf("Nonce called with %q", got)
			}
		})
	}
	// A proof that fails anyway is invalid_dpop_proof, and Nonce is not
	// asked about it.
	runAttacks(t, []attack{
		{name: "no nonce and a bad signature", opts: func(o *Options) { o.Nonce = accept }, raw: func(p string) string {
			return p[:len(p)-4] + "AAAA"
		}, why: "signature"},
		{name: "no nonce and the wrong htm", edit: func(s *spec) { s.claims["htm"] = "GET" }, opts: func(o *Options) { o.Nonce = accept }, why: "htm"},
		{name: "nonce not a string", edit: func(s *spec) { s.claims["nonce"] = 7 }, opts: func(o *Options) { o.Nonce = accept }, why: "nonce: not a string"},
	})
	if len(got) > 0 {
		t.Errorf("Nonce called for an invalid proof with %q", got)
	}
	s := newSpec(t, "ES256")
	s.claims["nonce"] = "server-nonce"
	p, err := Verify(s.mint(t), o)
	if err != nil || p.Nonce != "server-nonce" || len(got) != 1 || got[0] != "server-nonce" {
		t.Fatalf("Verify = %+v, %v; Nonce saw %q", p, err, got)
	}
}
