package tokenguard_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestVerifiedTokenCache(t *testing.T) {
	clk := newFakeClock()
	as := newAS(t, oauthtest.Options{Now: clk.Now})
	g := newGuard(t, as, tokenguard.Config{Now: clk.Now, Leeway: -1, UnknownKeyCooldown: time.Millisecond})

	// A handler that scribbles on its Principal does not change the next
	// request's, which comes from the cache. The lists are shared with
	// the cache (a hit copies none), read-only, but an append cannot reach
	// into them: their capacity is clipped.
	scribble := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		if p.Subject != "alice" || strings.Join(p.Scopes, " ") != "a b" || len(p.Audience) != 1 || p.Audience[0] != as.Resource() || len(p.Roles) != 0 {
			w.WriteHeader(http.StatusConflict)
			return
		}
		p.Subject = "mallory"
		p.Audience = append(p.Audience, "elsewhere")
		p.Scopes = append(p.Scopes, "admin")
		p.Roles = append(p.Roles, "root")
		w.WriteHeader(http.StatusOK)
	}))
	tok := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "a b", "exp": clk.Now().Add(2 * time.Second).Unix()})
	for i := range 3 {
		if w := call(scribble, "Bearer "+tok); w.Code != 200 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}

	if st := g.TokenCacheStats(); st.Misses != 1 || st.Hits != 2 || st.Entries != 1 {
		t.Errorf("after one token sent 3 times: %+v, want 1 miss, 2 hits, 1 entry", st)
	}

	// exp is checked on every hit.
	clk.Advance(2 * time.Second)
	w := call(g.Handler(http.NotFoundHandler()), "Bearer "+tok)
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "token expired"); w.Code != 401 || got != want {
		t.Errorf("cached token past exp: %d %s", w.Code, got)
	}

	// A key that leaves the key set takes its cached tokens with it at
	// the next refresh.
	h := g.Handler(http.NotFoundHandler())
	old := as.Mint(nil)
	if w := call(h, "Bearer "+old); w.Code != 404 {
		t.Fatalf("fresh token: %d", w.Code)
	}
	oldKid := as.KeyIDs()[0]
	as.RotateKey("RS256")
	as.RetireKey(oldKid)
	clk.Advance(time.Second)                                 // past the unknown-kid cooldown
	if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 404 { // refresh
		t.Fatalf("token by the new key: %d", w.Code)
	}
	if w := call(h, "Bearer "+old); w.Code != 401 {
		t.Errorf("cached token of a retired key after refresh: %d", w.Code)
	}
}

func TestVerifiedTokenCacheOff(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{TokenCacheSize: -1})
	tok := as.Mint(nil)
	for range 3 {
		if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+tok); w.Code != 404 {
			t.Fatalf("%d", w.Code)
		}
	}
}

func TestTokenCacheOff(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{TokenCacheSize: -1})
	tok := as.Mint(nil)
	for range 2 {
		if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+tok); w.Code != 404 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if st := g.TokenCacheStats(); st != (tokenguard.TokenCacheStats{}) {
		t.Errorf("cache off: %+v, want zero", st)
	}
}

// A cached token is trusted only while its issuer's key set is: once the
// set is older than MaxKeyStaleness, the token gets the 503 a token seen
// for the first time would, not a pass from the cache.
func TestCachedTokenNotTrustedPastKeyStaleness(t *testing.T) {
	clk := newFakeClock()
	as := newAS(t, oauthtest.Options{Now: clk.Now})
	g := newGuard(t, as, tokenguard.Config{Now: clk.Now, MaxKeyStaleness: time.Hour})
	tok := as.Mint(oauthtest.Claims{"exp": clk.Now().Add(3 * time.Hour).Unix()})
	var rc reached
	h := g.Handler(rc.handler())
	if w := call(h, "Bearer "+tok); w.Code != 200 {
		t.Fatalf("fresh token: %d", w.Code)
	}
	as.SetFault("jwks", &oauthtest.Fault{Status: http.StatusBadGateway})
	clk.Advance(59 * time.Minute)
	if w := call(h, "Bearer "+tok); w.Code != 200 {
		t.Fatalf("cached token within MaxKeyStaleness: %d", w.Code)
	}
	clk.Advance(2 * time.Minute)
	rc = reached{}
	w := call(h, "Bearer "+tok)
	if w.Code != http.StatusServiceUnavailable || rc.called || w.Header().Get("Retry-After") == "" || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("cached token past MaxKeyStaleness: %d, reached %v, Retry-After %q, challenge %q",
			w.Code, rc.called, w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"))
	}
	if st := g.TokenCacheStats(); st.Hits != 2 {
		t.Errorf("cache hits %d, want 2 (the stale hit counts, then is not trusted)", st.Hits)
	}
}
