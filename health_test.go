package tokenguard_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestHealth(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	g := newGuard(t, as, tokenguard.Config{UnknownKeyCooldown: time.Millisecond})
	h := g.Health()
	if !h.Ready || h.Err != nil || len(h.Issuers) != 1 || h.Issuers[0].Keys != tokenguard.KeysFresh || h.Issuers[0].Introspection != tokenguard.IntrospectionOff || h.Issuers[0].LastError != "" {
		t.Fatalf("fresh: %+v", h)
	}
	// A failed refresh: the last good set serves, stale.
	as.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{Status: 500})
	time.Sleep(2 * time.Millisecond)
	call(g.Handler(okHandler), "Bearer "+as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": "unknown-kid"}}))
	h = g.Health()
	if !h.Ready || h.Issuers[0].Keys != tokenguard.KeysStale || h.Issuers[0].LastError == "" || h.Issuers[0].KeysAge <= 0 {
		t.Errorf("stale: %+v", h)
	}

	// Past MaxKeyStaleness: missing, and not ready.
	as.SetFault(oauthtest.EndpointJWKS, nil)
	g2 := newGuard(t, as, tokenguard.Config{MaxKeyStaleness: time.Millisecond})
	time.Sleep(5 * time.Millisecond)
	h = g2.Health()
	if h.Ready || !errors.Is(h.Err, tokenguard.ErrUnavailable) || h.Issuers[0].Keys != tokenguard.KeysMissing {
		t.Errorf("missing: %+v", h)
	}

	// Introspection held back by a 429.
	as3, g3 := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	if got := g3.Health().Issuers[0].Introspection; got != tokenguard.IntrospectionOK {
		t.Errorf("introspection before: %s", got)
	}
	as3.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: 429, Header: http.Header{"Retry-After": {"30"}}})
	call(g3.Handler(okHandler), "Bearer "+as3.MintOpaque(nil))
	if got := g3.Health().Issuers[0].Introspection; got != tokenguard.IntrospectionHeldBack {
		t.Errorf("introspection after a 429: %s", got)
	}

	// Still starting (RetryStartup): not ready, with the start-up error.
	down := newAS(t, oauthtest.Options{})
	down.SetFault(oauthtest.EndpointServerMetadata, &oauthtest.Fault{Status: 503})
	down.SetFault(oauthtest.EndpointOpenIDConfiguration, &oauthtest.Fault{Status: 503})
	g4, err := tokenguard.New(context.Background(), tokenguard.Config{Issuer: down.Issuer, Audience: "a", InsecureAllowHTTP: true, RetryStartup: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g4.Close()
	if h := g4.Health(); h.Ready || !errors.Is(h.Err, tokenguard.ErrUnavailable) {
		t.Errorf("starting: %+v", h)
	}
}

// The tenants of a pattern in use are listed with their pattern, and a
// tenant without keys does not make the Guard unready.
func TestHealthListsTenants(t *testing.T) {
	ts := newTenantServer(t)
	pattern := ts.URL + "/t/*"
	clock := newFakeClock()
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers:           []tokenguard.TrustedIssuer{{Issuer: pattern, Audience: "https://api.example"}},
		InsecureAllowHTTP: true,
		Now:               clock.Now,
		MaxKeyStaleness:   time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if h := g.Health(); !h.Ready || len(h.Tenants) != 0 {
		t.Fatalf("before any token: %+v", h)
	}
	h := g.Handler(http.NotFoundHandler())
	for _, tenant := range []string{"beta", "acme"} {
		if w := call(h, "Bearer "+ts.token(tenant)); w.Code != 404 {
			t.Fatalf("%s: %d", tenant, w.Code)
		}
	}
	call(h, "Bearer "+ts.token("missing-one")) // not discovered: not listed
	got := g.Health()
	if !got.Ready || len(got.Tenants) != 2 {
		t.Fatalf("health %+v", got)
	}
	for i, tenant := range []string{"acme", "beta"} {
		ih := got.Tenants[i]
		if ih.Issuer != ts.URL+"/t/"+tenant || ih.Pattern != pattern || ih.Keys != tokenguard.KeysFresh || ih.KeysAge < 0 || ih.Introspection != tokenguard.IntrospectionOff {
			t.Errorf("tenant %d: %+v", i, ih)
		}
	}
	// Past MaxKeyStaleness the tenants' keys are missing (their tokens
	// get 503), with the age of the last good set; the Guard stays ready.
	clock.Advance(2 * time.Hour)
	got = g.Health()
	if !got.Ready || len(got.Tenants) != 2 || got.Tenants[0].Keys != tokenguard.KeysMissing || got.Tenants[0].KeysAge < 2*time.Hour {
		t.Fatalf("stale tenants: %+v", got)
	}
}
