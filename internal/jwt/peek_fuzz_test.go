package jwt

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzPeekAndLooksLikeJWS covers the two lenient readers of a token the
// strict parser may refuse, and Decode into a Token that held another one:
//
//   - Decode into a used Token gives exactly what Parse gives (same error
//     text, or the same Token), so nothing of the previous token survives;
//   - PeekIssuer is "" unless s has two dots, and a non-empty answer is the
//     string iss member of s's base64url payload object; when Parse accepts
//     s (payload up to 64 KiB), it is Parse's issuer: the lenient and the
//     strict reading agree on every token the strict one takes;
//   - LooksLikeJWS takes only three parts whose first is base64url of a JSON
//     object with an alg member, returns an alg only when it says ok, and
//     takes every token Parse accepts (header up to 4 KiB) with Parse's alg,
//     so no parseable JWS is ever classified as opaque.
func FuzzPeekAndLooksLikeJWS(f *testing.F) {
	for _, tc := range parseCases(f) {
		if len(tc.in) < 10_000 {
			f.Add(tc.in)
		}
	}
	b64 := base64.RawURLEncoding.EncodeToString
	for _, s := range []string{
		b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(`{"iss":"https://as.example"}`)) + ".",
		b64([]byte(` {"alg":"RS256"}`)) + "." + b64([]byte(`{"iss":"a","iss":"b"}`)) + ".c2ln",
		b64([]byte(`{"alg":5}`)) + "." + b64([]byte(`{"iss":"\u0061\ud800"}`)) + ".c2ln",
		b64([]byte(`{"alg":"ES256","Alg":"none"}`)) + "." + b64([]byte(`{"ISS":"x","iss":"y"}`)) + ".c2ln",
		b64([]byte(`{"alg":"ES256"}`)) + "." + b64([]byte(`{"iss":"x"}`)) + ".c2ln.more",
		b64([]byte(`{"alg":"ES256"}`)) + "." + b64([]byte(`{"iss":"x"}`)) + "=.c2ln",
		"eyJ.eyJ.eyJ",
		"..",
		"no-dots",
	} {
		f.Add(s)
	}
	prime := tok(okHeader, okClaims)
	f.Fuzz(func(t *testing.T, s string) {
		parsed, perr := Parse(s)
		var reused Token
		if err := reused.Decode(prime); err != nil {
			t.Fatalf("prime token: %v", err)
		}
		derr := reused.Decode(s)
		switch {
		case (perr == nil) != (derr == nil):
			t.Fatalf("Parse error %v, Decode into a used Token error %v", perr, derr)
		case perr != nil && perr.Error() != derr.Error():
			t.Fatalf("Parse error %q, Decode into a used Token error %q", perr, derr)
		case perr == nil && !reflect.DeepEqual(*parsed, reused):
			t.Fatalf("Decode into a used Token kept something:\n got %+v\nwant %+v", reused, *parsed)
		}
		parts := strings.Split(s, ".")

		iss := PeekIssuer(s)
		if len(parts) < 3 && iss != "" {
			t.Fatalf("PeekIssuer(%q) = %q with fewer than three parts", s, iss)
		}
		if iss != "" {
			// RawMessage values: a member PeekIssuer need not read, such as
			// a number beyond float64, must not matter.
			var m map[string]json.RawMessage
			var want string
			b, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil || json.Unmarshal(b, &m) != nil || json.Unmarshal(m["iss"], &want) != nil || want != iss {
				t.Fatalf("PeekIssuer(%q) = %q, which is not the payload's iss", s, iss)
			}
		}
		if perr == nil && len(parts[1]) <= 64<<10 && iss != parsed.Claims.Issuer {
			t.Fatalf("PeekIssuer(%q) = %q, Parse reads iss %q", s, iss, parsed.Claims.Issuer)
		}

		alg, ok := LooksLikeJWS(s)
		if alg != "" && !ok {
			t.Fatalf("LooksLikeJWS(%q) = %q, false", s, alg)
		}
		if ok {
			var m map[string]json.RawMessage
			b, err := base64.RawURLEncoding.DecodeString(parts[0])
			if len(parts) != 3 || err != nil || json.Unmarshal(b, &m) != nil || m["alg"] == nil {
				t.Fatalf("LooksLikeJWS(%q) = %q, true: not three parts with a JSON object header with alg", s, alg)
			}
		}
		if perr == nil && len(parts[0]) <= 4<<10 && (!ok || alg != parsed.Header.Alg) {
			t.Fatalf("LooksLikeJWS(%q) = %q, %v; Parse reads alg %q", s, alg, ok, parsed.Header.Alg)
		}
	})
}
