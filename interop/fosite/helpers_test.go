package fositeinterop

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
)

// newGuard builds a Guard that trusts as (RFC 8414 discovery only) for the
// resource, introspecting with the resource server's client at fosite.
// edit, when not nil, changes the configuration first.
func newGuard(t testing.TB, as *authServer, edit func(*tokenguard.Config)) *tokenguard.Guard {
	t.Helper()
	cfg := tokenguard.Config{
		Issuer:            as.issuer,
		Resource:          resource,
		InsecureAllowHTTP: true, // the AS is http://127.0.0.1
		Introspection:     tokenguard.IntrospectionConfig{ClientID: rsClientID, ClientSecret: rsSecret},
	}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := tokenguard.New(ctx, cfg)
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// result is what the protected API answered.
type result struct {
	status    int
	challenge string
	principal *tokenguard.Principal
}

// call sends token (none when "") to an API behind g.Handler.
func call(g *tokenguard.Guard, token string) result {
	var got *tokenguard.Principal
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = tokenguard.PrincipalFrom(r.Context())
		w.WriteHeader(http.StatusOK)
	}))
	req := httptest.NewRequest(http.MethodGet, "https://api.example.test/orders", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return result{status: rec.Code, challenge: rec.Header().Get("WWW-Authenticate"), principal: got}
}

// challenge is the WWW-Authenticate value tokenguard must send: RFC 6750 §3
// with the realm (the resource) and RFC 9728 §5.1's resource_metadata, the
// well-known URL with the resource's path inserted. code "" is the answer to
// a request without a token.
func challenge(code, desc string) string {
	parts := []string{`realm="` + resource + `"`}
	if code != "" {
		parts = append(parts, `error="`+code+`"`, `error_description="`+desc+`"`)
	}
	parts = append(parts, `resource_metadata="`+metadataURL+`"`)
	return "Bearer " + strings.Join(parts, ", ")
}

// wantOK asserts that the token was accepted and returns its Principal.
func wantOK(t *testing.T, g *tokenguard.Guard, token string) *tokenguard.Principal {
	t.Helper()
	r := call(g, token)
	if r.status != http.StatusOK || r.principal == nil {
		t.Fatalf("got %d %q, want 200 with a Principal", r.status, r.challenge)
	}
	return r.principal
}

// wantRejected asserts the exact status and challenge of a refusal.
func wantRejected(t *testing.T, g *tokenguard.Guard, token string, status int, code, desc string) {
	t.Helper()
	r := call(g, token)
	if want := challenge(code, desc); r.status != status || r.challenge != want {
		t.Fatalf("got %d\n  WWW-Authenticate: %s\nwant %d\n  WWW-Authenticate: %s", r.status, r.challenge, status, want)
	}
}

// logJWT records a JWT's header and claims (never the token itself).
func logJWT(t *testing.T, what, token string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("%s: not a JWS compact serialization (%d parts)", what, len(parts))
	}
	dec := func(s string) (map[string]any, string) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return m, string(b)
	}
	header, h := dec(parts[0])
	claims, c := dec(parts[1])
	t.Logf("%s: header %s claims %s", what, h, c)
	return header, claims
}

// shape describes an opaque token without revealing it: its ory_xx_
// prefix, if any, and the lengths of its dot-separated parts.
func shape(token string) string {
	prefix := ""
	if len(token) > 7 && strings.HasPrefix(token, "ory_") && token[6] == '_' {
		prefix, token = token[:7], token[7:]
	}
	var lens []string
	for _, p := range strings.Split(token, ".") {
		lens = append(lens, fmt.Sprint(len(p)))
	}
	return fmt.Sprintf("%s<%s chars>", prefix, strings.Join(lens, " chars>.<"))
}

// tamper changes one character in the middle of the dot-separated part of
// token numbered part (an opaque ory_at_ token's second part is its HMAC).
func tamper(token string, part int) string {
	parts := strings.Split(token, ".")
	b := []byte(parts[part])
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	parts[part] = string(b)
	return strings.Join(parts, ".")
}

// forgeClaims rewrites a JWT's claims with edit, keeping its header and
// signature.
func forgeClaims(t *testing.T, token string, edit func(map[string]any)) string {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
