package tgotel_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
	tgotel "github.com/tokenguard/tokenguard/otel"
)

// The tenants of a pattern in use have a key-set age, unless
// SkipIssuerAttribute says there are too many of them.
func TestObserveTenants(t *testing.T) {
	for _, skip := range []bool{false, true} {
		var tenants *httptest.Server
		var as *oauthtest.Server
		tenants = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tenant, ok := strings.CutPrefix(r.URL.Path, "/.well-known/oauth-authorization-server/t/")
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": tenants.URL + "/t/" + tenant, "jwks_uri": as.JWKSURL()})
		}))
		t.Cleanup(tenants.Close)
		e := newEnv(t, setup{opts: tgotel.Options{SkipIssuerAttribute: skip}, config: func(cfg *tokenguard.Config) {
			cfg.Issuers = []tokenguard.TrustedIssuer{{Issuer: tenants.URL + "/t/*", Audience: cfg.Resource}}
		}})
		as = e.as
		unregister, err := e.in.Observe(e.g)
		if err != nil {
			t.Fatal(err)
		}
		defer unregister()
		tenant := tenants.URL + "/t/acme"
		if got := request(nil, e.g.Handler(ok), e.as.Mint(oauthtest.Claims{"iss": tenant})); got != 200 {
			t.Fatalf("tenant token: %d", got)
		}
		e.clock.Advance(60e9)
		want := map[string]float64{set("tokenguard.issuer", e.as.Issuer): 60}
		if !skip {
			want[set("tokenguard.issuer", tenant)] = 60
		}
		wantPoints(t, e.collect(t), "tokenguard.jwks.age", want)
	}
}
