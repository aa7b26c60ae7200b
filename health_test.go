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
