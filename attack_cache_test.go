package tokenguard_test

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// hookClock is a fixed clock that runs trigger once, the first time it is
// read by the function named caller after it is armed. It puts an event
// at an exact point of a request: verifyJWT reads the clock once, after
// the key look-up and the signature check and before the claims.
type hookClock struct {
	base    time.Time
	caller  string
	armed   atomic.Bool
	trigger func()
}

func (c *hookClock) Now() time.Time {
	if c.armed.Load() && calledBy(c.caller) && c.armed.CompareAndSwap(true, false) {
		c.trigger()
	}
	return c.base
}

// calledBy reports whether the caller of the clock is the function whose
// name ends with suffix.
func calledBy(suffix string) bool {
	pcs := make([]uintptr, 1)
	if runtime.Callers(3, pcs) == 0 { // Callers, calledBy, Now
		return false
	}
	f, _ := runtime.CallersFrames(pcs).Next()
	return strings.HasSuffix(f.Function, suffix)
}

// A key that leaves the key set while a token it signed is being verified
// must not leave that token in the verified-token cache: the refresh's
// purge of the key's tokens ran before the entry was stored. An attacker
// holding a compromised key can time the refresh (a token with an unknown
// kid triggers one) and send tokens signed with the key meanwhile; one
// cached this way would be accepted until the exp the attacker chose.
func TestAttackKeyRetiredDuringVerificationIsNotCached(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	clk := &hookClock{base: time.Now(), caller: ".(*Guard).verifyJWT"}
	g := newGuard(t, as, tokenguard.Config{Now: clk.Now})
	h := g.Handler(http.NotFoundHandler())
	oldKid := as.KeyIDs()[0]
	stolen := as.Mint(nil) // signed by oldKid
	clk.trigger = func() {
		// Between the signature check and the caching: the server drops
		// the key and the guard learns it (a token by the new key is an
		// unknown kid, so one refresh).
		as.RotateKey("RS256")
		as.RetireKey(oldKid)
		if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 404 {
			t.Errorf("token by the new key: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	clk.armed.Store(true)
	// This request looked its key up before the refresh: it may pass.
	if w := call(h, "Bearer "+stolen); w.Code != 404 {
		t.Fatalf("token verified before the refresh: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if clk.armed.Load() {
		t.Fatal("the refresh never ran inside verifyJWT")
	}
	// The next one must not be vouched for by a key no longer published.
	w := call(h, "Bearer "+stolen)
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "unknown signing key"); w.Code != 401 || got != want {
		t.Errorf("token of a retired key, after the refresh: %d %s; want 401 %s", w.Code, got, want)
	}
}

// upcase is a json.Unmarshaler that writes into the bytes json.Unmarshal
// lends it (nothing in encoding/json forbids that).
type upcase struct{}

func (*upcase) UnmarshalJSON(b []byte) error {
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
	}
	return nil
}

// Principal.Claims hands the claims to user code. The strings of the
// cached Principal (sub, scopes, iss, ...) are views of the same decoded
// token, so the bytes user code may write into must be a copy: otherwise
// a handler changes the next request's Subject and scopes, and Go strings
// (map and cache keys among them) change under their users.
func TestAttackClaimsUnmarshalerCannotRewriteCachedPrincipal(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	h := g.RequireScopes("read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		if p.Subject != "alice" || p.Issuer != as.Issuer || strings.Join(p.Scopes, " ") != "read write" {
			w.WriteHeader(http.StatusConflict)
			return
		}
		if err := p.Claims(&upcase{}); err != nil {
			t.Errorf("Claims: %v", err)
		}
		w.WriteHeader(http.StatusOK)
	}))
	h = g.Handler(h)
	tok := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "read write"})
	for i := range 3 {
		if w := call(h, "Bearer "+tok); w.Code != 200 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}

// The pattern issuer a token was verified for decides whether it is also
// introspected, even if the issuer leaves the LRU of pattern issuers
// (a flood of other tenants) before the decision: a revoked token must
// not pass because its issuer was evicted meanwhile.
func TestAttackPatternIssuerEvictedMidRequestStillIntrospects(t *testing.T) {
	ts := newTenantServer(t)
	ts.keys.RegisterClient(rsID, rsSecret)
	clk := &hookClock{base: time.Now(), caller: ".(*Guard).verifyJWT"}
	// Only Config.Issuers are trusted: no resource metadata.
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers:           []tokenguard.TrustedIssuer{{Issuer: ts.URL + "/t/*", Audience: "https://api.example", Introspect: tokenguard.IssuerIntrospectOn}},
		MaxPatternIssuers: 1,
		Introspection:     tokenguard.IntrospectionConfig{Endpoint: ts.keys.IntrospectionURL(), ClientID: rsID, ClientSecret: rsSecret},
		Now:               clk.Now,
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	h := g.Handler(http.NotFoundHandler())

	revoked1, revoked2 := ts.token("acme"), ts.keys.Mint(oauthtest.Claims{"iss": ts.URL + "/t/acme", "aud": "https://api.example", "jti": "2"})
	ts.keys.Revoke(revoked1)
	ts.keys.Revoke(revoked2)
	const inactive = `Bearer error="invalid_token", error_description="token is not active"` // no resource, no realm
	if w := call(h, "Bearer "+revoked1); w.Code != 401 || w.Header().Get("WWW-Authenticate") != inactive {
		t.Fatalf("revoked token, issuer in the LRU: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	clk.trigger = func() {
		// Another tenant's token takes acme's place in the LRU.
		if w := call(h, "Bearer "+ts.token("other")); w.Code != 404 {
			t.Errorf("other tenant's token: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	clk.armed.Store(true)
	w := call(h, "Bearer "+revoked2)
	if clk.armed.Load() {
		t.Fatal("the eviction never ran inside verifyJWT")
	}
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != inactive {
		t.Errorf("revoked token, issuer evicted mid-request: %d %s; want 401 %s", w.Code, w.Header().Get("WWW-Authenticate"), inactive)
	}
}

// Tenants churning through a small LRU of pattern issuers while their
// tokens hit the verified-token cache: an entry whose issuer was evicted
// (its key set closed) is verified again, never trusted blindly and never
// a panic. Run with -race.
func TestAttackPatternIssuerChurnWithTokenCache(t *testing.T) {
	ts := newTenantServer(t)
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers:           []tokenguard.TrustedIssuer{{Issuer: ts.URL + "/t/*", Audience: "https://api.example"}},
		MaxPatternIssuers: 2,
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	h := g.Handler(http.NotFoundHandler())
	tokens := make([]string, 6)
	for i := range tokens {
		tokens[i] = ts.token(string(rune('a' + i)))
	}
	forged := ts.token("a")
	forged = forged[:len(forged)-4] + "AAAA" // a's token with a broken signature
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				tok := tokens[(w+i)%len(tokens)]
				want := 404
				if i%7 == 0 {
					tok, want = forged, 401
				}
				r := call(h, "Bearer "+tok)
				switch {
				case r.Code == want:
				case r.Code == 503 && r.Header().Get("Retry-After") != "":
					// Too many discoveries in flight: fail closed.
				default:
					t.Errorf("status %d, want %d: %s", r.Code, want, r.Header().Get("WWW-Authenticate"))
				}
			}
		}()
	}
	wg.Wait()
	if n := g.PatternIssuers(); n > 2 {
		t.Errorf("%d pattern issuers kept, bound is 2", n)
	}
}
