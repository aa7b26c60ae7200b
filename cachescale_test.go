package tokenguard_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// A token without kid is checked against at most MaxKeysPerToken keys of
// its alg: beyond, it is refused at once (an attacker's forged token would
// otherwise cost one signature check per key), and the operator is told
// why.
func TestMaxKeysPerToken(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	noKid := func() string { return as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": nil}}) }
	var logs logBuffer
	g := newGuard(t, as, tokenguard.Config{Logger: logs.logger(), UnknownKeyCooldown: time.Millisecond})
	h := g.Handler(okHandler)
	if w := call(h, "Bearer "+noKid()); w.Code != 200 {
		t.Fatalf("one key, no kid: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	as.RotateKey("ES256") // two keys: a rotation in progress
	time.Sleep(2 * time.Millisecond)
	if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 200 { // the new kid makes the guard fetch the set
		t.Fatalf("new key: %d", w.Code)
	}
	if w := call(h, "Bearer "+noKid()); w.Code != 200 {
		t.Fatalf("two keys, no kid: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	as.RotateKey("ES256") // three
	time.Sleep(2 * time.Millisecond)
	if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 200 {
		t.Fatalf("newest key: %d", w.Code)
	}
	w := call(h, "Bearer "+noKid())
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != wantChallenge(g, "invalid_token", "unknown signing key") {
		t.Errorf("three keys, no kid: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "MaxKeysPerToken") {
		t.Errorf("no warning naming MaxKeysPerToken: %s", out)
	}
	// With kid, the same key set is fine.
	if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 200 {
		t.Errorf("with kid: %d", w.Code)
	}

	wide := newGuard(t, as, tokenguard.Config{MaxKeysPerToken: 3})
	if w := call(wide.Handler(okHandler), "Bearer "+noKid()); w.Code != 200 {
		t.Errorf("MaxKeysPerToken 3: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

// A token refused after its signature was checked (or for its signature)
// is answered the same way when sent again, from the cache of refusals:
// no second signature check. A new key set makes a signature refusal
// count for nothing.
func TestRefusedTokensAreRemembered(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	g := newGuard(t, as, tokenguard.Config{UnknownKeyCooldown: time.Millisecond})
	h := g.Handler(okHandler)
	forged := tamperSignature(as.Mint(nil))
	expired := as.Mint(oauthtest.Claims{"exp": time.Now().Add(-time.Hour)})
	elsewhere := as.Mint(oauthtest.Claims{"aud": "https://other.example"})
	cases := []struct{ token, desc string }{
		{forged, "invalid signature"},
		{expired, "token expired"},
		{elsewhere, "token not meant for this resource"},
	}
	for round := range 3 {
		for _, c := range cases {
			w := call(h, "Bearer "+c.token)
			if w.Code != 401 || w.Header().Get("WWW-Authenticate") != wantChallenge(g, "invalid_token", c.desc) {
				t.Errorf("round %d, %s: %d %q", round, c.desc, w.Code, w.Header().Get("WWW-Authenticate"))
			}
		}
	}
	if st := g.TokenCacheStats(); st.Refused != 6 || st.RefusedEntries != 3 {
		t.Errorf("after three rounds of three refused tokens: %+v, want 6 answered from 3 entries", st)
	}

	// A refresh of the key set (here for a new kid) ends the signature
	// refusal's life, not the others'.
	as.RotateKey("ES256")
	time.Sleep(2 * time.Millisecond)
	if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 200 {
		t.Fatalf("new key: %d", w.Code)
	}
	before := g.TokenCacheStats().Refused
	call(h, "Bearer "+forged)
	call(h, "Bearer "+expired)
	if got := g.TokenCacheStats().Refused - before; got != 1 {
		t.Errorf("after a refresh: %d refusals answered from the cache, want 1 (the expired token's)", got)
	}
	// A handler's ErrorHandler may change the *Error it gets: the next
	// answer is not changed with it.
	g2 := newGuard(t, as, tokenguard.Config{ErrorHandler: func(w http.ResponseWriter, r *http.Request, e *tokenguard.Error) {
		w.WriteHeader(e.Status)
		e.Description, e.Status = "scribbled", 200
	}})
	for range 2 {
		if w := call(g2.Handler(okHandler), "Bearer "+forged); w.Code != 401 || w.Header().Get("WWW-Authenticate") != wantChallenge(g2, "invalid_token", "invalid signature") {
			t.Errorf("after a scribbling ErrorHandler: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}

// The cache holds its configured capacity: the hashes of distinct tokens
// spread unevenly over the shards, and none is evicted before the whole
// cache is full.
func TestTokenCacheHoldsItsCapacity(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	g := newGuard(t, as, tokenguard.Config{TokenCacheSize: 2000})
	h := g.Handler(okHandler)
	for i := range 2000 {
		if w := call(h, "Bearer "+as.Mint(oauthtest.Claims{"jti": strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Now().String()})); w.Code != 200 {
			t.Fatalf("token %d: %d", i, w.Code)
		}
	}
	st := g.TokenCacheStats()
	if st.Entries != 2000 || st.Evictions != 0 {
		t.Errorf("2,000 tokens into a cache of 2,000: %+v", st)
	}
	call(h, "Bearer "+as.Mint(oauthtest.Claims{"jti": "one more"}))
	if st := g.TokenCacheStats(); st.Entries != 2000 || st.Evictions != 1 {
		t.Errorf("one more: %+v", st)
	}
}
