package tokenguard

import (
	"strings"
	"testing"
)

// authParam is one name="value" of a parsed challenge, the value unescaped.
type authParam struct{ name, value string }

// parseBearerChallenge reads a challenge as RFC 9110 §11.3 and RFC 6750 §3
// allow challenge() to write it: "Bearer", one space, then auth-params
// name="quoted-string" separated by ", ". It returns ok false for anything
// else, including a byte outside printable ASCII anywhere.
func parseBearerChallenge(s string) (params []authParam, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return nil, false
		}
	}
	rest, found := strings.CutPrefix(s, "Bearer ")
	if !found {
		return nil, false
	}
	for {
		eq := strings.Index(rest, `="`)
		if eq <= 0 {
			return nil, false
		}
		name := rest[:eq]
		for _, c := range []byte(name) {
			if !(c >= 'a' && c <= 'z' || c == '_') {
				return nil, false
			}
		}
		rest = rest[eq+2:]
		var v strings.Builder
		closed := false
		for len(rest) > 0 && !closed {
			c := rest[0]
			rest = rest[1:]
			switch c {
			case '\\':
				if len(rest) == 0 {
					return nil, false
				}
				v.WriteByte(rest[0])
				rest = rest[1:]
			case '"':
				closed = true
			default:
				v.WriteByte(c)
			}
		}
		if !closed {
			return nil, false
		}
		params = append(params, authParam{name, v.String()})
		if rest == "" {
			return params, true
		}
		if rest, found = strings.CutPrefix(rest, ", "); !found {
			return nil, false
		}
	}
}

// printable keeps the printable ASCII bytes of s, and drops '"' and '\'
// too when dropQuotes is set: what challenge() promises to send of a value.
func printable(s string, dropQuotes bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || dropQuotes && (c == '"' || c == '\\') {
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// FuzzChallenge: whatever the realm, error code, description, scopes and
// resource metadata URL (all of which can come from configuration, a
// discovery document or a route's requirements), the WWW-Authenticate value
// is one line of printable ASCII that parses back, as the RFC 9110 grammar
// says, into exactly the parameters given, in challenge()'s order, each
// value the printable ASCII of its input ('"' and '\' escaped in realm and
// resource_metadata, dropped from error, error_description and scope, whose
// RFC 6750 syntax excludes them). No input can end the header, add another
// one or a parameter of its own.
func FuzzChallenge(f *testing.F) {
	f.Add("https://api.example", "invalid_token", "token expired", "", "https://api.example/.well-known/oauth-protected-resource")
	f.Add("", "", "", "", "")
	f.Add("", "insufficient_scope", "token lacks a required scope", "orders:read orders:write", "")
	f.Add(`realm", error="forged`, `x", scope="admin`, `a\"b\\`, `a"b \c`, `https://x/"y"\`)
	f.Add("r\r\nSet-Cookie: a=b", "invalid_request\n", "bad\x00desc\x7f", "é\u2028s", "\xff\xfe")
	f.Add("", "", "description without a code", "", "")
	f.Add(`\`, `"`, `\\"`, " ", `"`)
	f.Fuzz(func(t *testing.T, realm, code, desc, scopes, rm string) {
		var scopeList []string
		if scopes != "" {
			scopeList = strings.Split(scopes, " ")
		}
		got := challenge(realm, &Error{Status: 401, Code: code, Description: desc, Scopes: scopeList}, rm)
		params, ok := parseBearerChallenge(got)
		if !ok {
			t.Fatalf("challenge(%q, %q, %q, %q, %q) = %q: not one well-formed Bearer challenge of printable ASCII", realm, code, desc, scopes, rm, got)
		}
		var want []authParam
		if realm != "" {
			want = append(want, authParam{"realm", printable(realm, false)})
		}
		if code != "" {
			want = append(want, authParam{"error", printable(code, true)})
			if desc != "" {
				want = append(want, authParam{"error_description", printable(desc, true)})
			}
		}
		if len(scopeList) > 0 {
			want = append(want, authParam{"scope", printable(scopes, true)})
		}
		if rm != "" {
			want = append(want, authParam{"resource_metadata", printable(rm, false)})
		}
		if len(want) == 0 {
			want = []authParam{{"realm", ""}} // RFC 6750 §3: at least one auth-param
		}
		if len(params) != len(want) {
			t.Fatalf("challenge %q has parameters %q, want %q", got, params, want)
		}
		for i := range want {
			if params[i] != want[i] {
				t.Fatalf("challenge %q: parameter %d is %q, want %q", got, i, params[i], want[i])
			}
		}
	})
}
