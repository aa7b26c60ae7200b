package tokenguard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// newAS starts an authorization server for one test.
func newAS(t testing.TB, opts oauthtest.Options) *oauthtest.Server {
	t.Helper()
	as := oauthtest.NewServer(opts)
	t.Cleanup(as.Close)
	return as
}

var (
	sharedOnce sync.Once
	sharedAS   *oauthtest.Server
)

// shared is one long-lived server with keys for the three algorithms the
// core must cover, so table tests do not pay for RSA key generation each.
// Tests that rotate or break keys use their own server.
func shared(t testing.TB) *oauthtest.Server {
	sharedOnce.Do(func() {
		sharedAS = oauthtest.NewServer(oauthtest.Options{Algorithms: []string{"RS256", "ES256", "EdDSA"}})
	})
	return sharedAS
}

// newGuard builds a Guard against as from its RFC 9728 metadata.
func newGuard(t testing.TB, as *oauthtest.Server, cfg tokenguard.Config) *tokenguard.Guard {
	t.Helper()
	if cfg.ResourceMetadataURL == "" && cfg.Issuer == "" && cfg.Resource == "" {
		cfg.ResourceMetadataURL = as.ResourceMetadataURL()
	}
	cfg.InsecureAllowHTTP = true
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
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

// call sends one request with the given Authorization header value through h.
func call(h http.Handler, authorization string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/orders", nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// wantChallenge is the exact WWW-Authenticate the guard must send.
func wantChallenge(g *tokenguard.Guard, code, desc string) string {
	var parts []string
	if g.Resource() != "" {
		parts = append(parts, `realm="`+g.Resource()+`"`)
	}
	if code != "" {
		parts = append(parts, `error="`+code+`"`, `error_description="`+desc+`"`)
	}
	if g.ResourceMetadataURL() != "" {
		parts = append(parts, `resource_metadata="`+g.ResourceMetadataURL()+`"`)
	}
	return "Bearer " + strings.Join(parts, ", ")
}
