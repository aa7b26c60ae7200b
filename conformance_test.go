package tokenguard_test

import (
	"net/http"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest/conformance"
)

// The conformance table through plain net/http: Handler on a ServeMux,
// RequireScopes for the scoped route.
func TestConformanceNetHTTP(t *testing.T) {
	conformance.Run(t, func(_ testing.TB, s conformance.Setup) http.Handler {
		probe := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := tokenguard.PrincipalFrom(r.Context())
			s.Probe(w, p)
		})
		mux := http.NewServeMux()
		mux.Handle("GET "+conformance.PathAny, probe)
		mux.Handle("GET "+conformance.PathScoped, s.Guard.RequireScopes(conformance.ScopeRequired)(probe))
		return s.Guard.Handler(mux)
	})
}
