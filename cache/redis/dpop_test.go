package tgredis_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// A DPoP proof accepted by one replica is refused by every other: the
// replicas record each proof's jti in Redis (RFC 9449 §11.1), so a proof
// captured on its way to one replica cannot be replayed to another.
func TestFleetDPoPReplayAcrossReplicas(t *testing.T) {
	srv := needServer(t)
	as := newFleetAS(t, oauthtest.Options{})
	origin := "https://api.example"
	rs := newReplicas(t, 2, as, srv, testPrefix(t), tokenguard.FleetConfig{}, func(cfg *tokenguard.Config) {
		cfg.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: origin}
	})
	key := oauthtest.NewDPoPKey("ES256")
	token := as.Mint(key.Bind(oauthtest.Claims{"sub": "alice"}))
	send := func(g *tokenguard.Guard, proof string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", proof)
		w := httptest.NewRecorder()
		g.Handler(okHandler).ServeHTTP(w, r)
		return w
	}
	proof := key.Proof(http.MethodGet, origin+"/orders", token)
	if w := send(rs[0].g, proof); w.Code != 200 {
		t.Fatalf("first use at replica 0: %d %q", w.Code, w.Header().Values("WWW-Authenticate"))
	}
	w := send(rs[1].g, proof)
	want := `error="invalid_dpop_proof", error_description="DPoP proof replayed"`
	if got := w.Header().Values("WWW-Authenticate"); w.Code != 401 || len(got) != 2 || !strings.HasPrefix(got[0], "DPoP ") || !strings.Contains(got[0], want) {
		t.Fatalf("replayed at replica 1: %d %q", w.Code, got)
	}
	if w := send(rs[1].g, key.Proof(http.MethodGet, origin+"/orders", token)); w.Code != 200 {
		t.Fatalf("a fresh proof at replica 1: %d", w.Code)
	}
}
