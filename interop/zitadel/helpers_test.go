package zitadel_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
)

// wantChallenge is the exact WWW-Authenticate the guard must send (the
// same rule as the core's helper of that name): realm, error and
// error_description, scope for insufficient_scope, resource_metadata.
func wantChallenge(g *tokenguard.Guard, code, desc string, scopes ...string) string {
	var parts []string
	if g.Resource() != "" {
		parts = append(parts, `realm="`+g.Resource()+`"`)
	}
	if code != "" {
		parts = append(parts, `error="`+code+`"`, `error_description="`+desc+`"`)
	}
	if len(scopes) > 0 {
		parts = append(parts, `scope="`+strings.Join(scopes, " ")+`"`)
	}
	if g.ResourceMetadataURL() != "" {
		parts = append(parts, `resource_metadata="`+g.ResourceMetadataURL()+`"`)
	}
	return "Bearer " + strings.Join(parts, ", ")
}

// reached records what the protected handler saw.
type reached struct {
	called    bool
	principal *tokenguard.Principal
}

func (rc *reached) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.called = true
		rc.principal, _ = tokenguard.PrincipalFrom(r.Context())
		w.WriteHeader(http.StatusOK)
	})
}

// call sends one request with the bearer token through h.
func call(h http.Handler, tok string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/orders", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// accept asserts that h lets tok through and returns the Principal.
func accept(t *testing.T, g *tokenguard.Guard, tok string) *tokenguard.Principal {
	t.Helper()
	var rc reached
	w := call(g.Handler(rc.handler()), tok)
	if w.Code != http.StatusOK || !rc.called {
		t.Fatalf("status %d, WWW-Authenticate %q, body %s; want 200", w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
	}
	return rc.principal
}

// reject asserts the exact status and challenge h answers tok with.
func reject(t *testing.T, h http.Handler, g *tokenguard.Guard, tok string, status int, code, desc string, scopes ...string) {
	t.Helper()
	w := call(h, tok)
	if w.Code != status {
		t.Fatalf("status %d (WWW-Authenticate %q, body %s), want %d", w.Code, w.Header().Get("WWW-Authenticate"), w.Body, status)
	}
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, code, desc, scopes...); got != want {
		t.Fatalf("WWW-Authenticate\n got %s\nwant %s", got, want)
	}
}

// rejectToken is reject through g.Handler, always 401 invalid_token.
func rejectToken(t *testing.T, g *tokenguard.Guard, tok, desc string) {
	t.Helper()
	var rc reached
	reject(t, g.Handler(rc.handler()), g, tok, http.StatusUnauthorized, tokenguard.CodeInvalidToken, desc)
	if rc.called {
		t.Fatal("the handler ran for a rejected token")
	}
}

// segment decodes one base64url part of a compact JOSE serialization as
// JSON, for the record.
func segment(t *testing.T, part string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("segment %.20q…: %v", part, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("segment %s: %v", b, err)
	}
	return m
}

// logJSON writes v as one JSON line to the test log.
func logJSON(t *testing.T, what string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	t.Logf("%s: %s", what, b)
}
