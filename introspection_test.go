package tokenguard_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// fakeClock is a settable clock shared by the guard and the server.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const rsID, rsSecret = "resource-server", "rs secret:%@"

// opaqueSetup is a server with a registered resource-server client and a
// guard that introspects with it.
func opaqueSetup(t *testing.T, opts oauthtest.Options, ic tokenguard.IntrospectionConfig, cfg tokenguard.Config) (*oauthtest.Server, *tokenguard.Guard) {
	t.Helper()
	as := newAS(t, opts)
	as.RegisterClient(rsID, rsSecret)
	if ic.ClientID == "" && ic.AuthMethod != "none" && ic.BearerToken == "" {
		ic.ClientID, ic.ClientSecret = rsID, rsSecret
	}
	cfg.Introspection = ic
	if cfg.Now == nil && opts.Now != nil {
		cfg.Now = opts.Now
	}
	return as, newGuard(t, as, cfg)
}

func TestOpaqueTokens(t *testing.T) {
	clk := newFakeClock()
	as, g := opaqueSetup(t, oauthtest.Options{Now: clk.Now}, tokenguard.IntrospectionConfig{NegativeTTL: time.Second}, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())

	active := as.MintOpaque(oauthtest.Claims{"sub": "bob", "scope": "orders:read", "client_id": "app", "tenant": "acme"})
	var rc reached
	w := call(g.Handler(rc.handler()), "Bearer "+active)
	if w.Code != 200 {
		t.Fatalf("active opaque token: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	p := rc.principal
	if p.Kind != tokenguard.KindOpaque || p.Subject != "bob" || p.ClientID != "app" || !p.HasScope("orders:read") || p.Issuer != as.Issuer {
		t.Errorf("principal %+v", p)
	}
	var extra struct{ Tenant string }
	if err := p.Claims(&extra); err != nil || extra.Tenant != "acme" {
		t.Errorf("Claims: %+v %v", extra, err)
	}

	for _, tc := range []struct {
		name, token, desc string
	}{
		{"unknown", "not-a-token-this-server-issued", "token is not active"},
		{"expired", as.MintOpaque(oauthtest.Claims{"exp": clk.Now().Add(-time.Minute).Unix()}), "token is not active"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := call(h, "Bearer "+tc.token)
			if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", tc.desc); w.Code != 401 || got != want {
				t.Errorf("%d %s\nwant %s", w.Code, got, want)
			}
		})
	}

	// Revocation takes effect once the cached positive answer expires.
	revoked := as.MintOpaque(nil)
	if w := call(h, "Bearer "+revoked); w.Code != 404 {
		t.Fatalf("before revocation: %d", w.Code)
	}
	as.Revoke(revoked)
	clk.Advance(5*time.Minute + time.Second) // past MaxTTL
	w = call(h, "Bearer "+revoked)
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "token is not active"); w.Code != 401 || got != want {
		t.Errorf("revoked: %d %s", w.Code, got)
	}
}

func TestOpaqueCoalescingAndCaching(t *testing.T) {
	clk := newFakeClock()
	as, g := opaqueSetup(t, oauthtest.Options{Now: clk.Now}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	tok := as.MintOpaque(oauthtest.Claims{"exp": clk.Now().Add(2 * time.Second).Unix()})
	as.SetFault("introspect", &oauthtest.Fault{Delay: 50 * time.Millisecond}) // hold the call open
	as.ResetCounts()
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := call(h, "Bearer "+tok); w.Code == 404 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	as.SetFault("introspect", nil)
	if n := as.Requests("introspect"); n != 1 {
		t.Errorf("200 concurrent requests made %d introspection calls, want 1", n)
	}
	if ok.Load() != 200 {
		t.Errorf("%d of 200 accepted", ok.Load())
	}
	for range 50 {
		call(h, "Bearer "+tok)
	}
	if n := as.Requests("introspect"); n != 1 {
		t.Errorf("cached token made %d calls in all, want 1", n)
	}
	// exp 2 s away: not served from the cache once it (and the default
	// leeway of 30 s, which answers get as JWTs do) has passed.
	clk.Advance(32 * time.Second)
	w := call(h, "Bearer "+tok)
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "token expired"); w.Code != 401 || got != want {
		t.Errorf("after exp: %d %s", w.Code, got)
	}
}

func TestIntrospectionFailuresAre503AndNeverCached(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault *oauthtest.Fault
		retry string
	}{
		{"429 with Retry-After", &oauthtest.Fault{Status: 429, Header: http.Header{"Retry-After": {"7"}}, Body: `{"error":"rate_limited"}`, ContentType: "application/json"}, "7"},
		{"500", &oauthtest.Fault{Status: 500}, "5"},
		{"HTML body", &oauthtest.Fault{Status: 200, Body: "<html>maintenance</html>", ContentType: "text/html"}, "5"},
		{"oversized body", &oauthtest.Fault{Status: 200, Body: `{"active":true,"pad":"` + strings.Repeat("a", 1<<20) + `"}`, ContentType: "application/json"}, "5"},
		{"active missing", &oauthtest.Fault{Status: 200, Body: `{"sub":"x"}`, ContentType: "application/json"}, "5"},
		{"active as a string", &oauthtest.Fault{Status: 200, Body: `{"active":"true"}`, ContentType: "application/json"}, "5"},
		{"timeout", &oauthtest.Fault{Delay: 3 * time.Second}, "5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{FetchTimeout: 200 * time.Millisecond})
			tok := as.MintOpaque(nil)
			as.SetFault("introspect", tc.fault)
			var rc reached
			w := call(g.Handler(rc.handler()), "Bearer "+tok)
			if w.Code != http.StatusServiceUnavailable || rc.called {
				t.Fatalf("status %d, reached %v", w.Code, rc.called)
			}
			if got := w.Header().Get("Retry-After"); got != tc.retry {
				t.Errorf("Retry-After %q, want %q", got, tc.retry)
			}
			if w.Header().Get("WWW-Authenticate") != "" {
				t.Errorf("503 with a challenge: %s", w.Header().Get("WWW-Authenticate"))
			}
			if st := g.IntrospectionStats(); st.Entries != 0 {
				t.Errorf("a failure was cached: %+v", st)
			}
		})
	}
}

func TestWrongIntrospectionCredentials(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: "wrong"}, tokenguard.Config{})
	w := call(g.Handler(http.NotFoundHandler()), "Bearer "+as.MintOpaque(nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("wrong credentials: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestIntrospectionAuthMethods(t *testing.T) {
	for _, method := range []string{"client_secret_basic", "client_secret_post", "bearer", "none"} {
		t.Run(method, func(t *testing.T) {
			opts := oauthtest.Options{}
			if method == "none" {
				opts.IntrospectionAuth = "none"
			}
			ic := tokenguard.IntrospectionConfig{AuthMethod: method}
			if method != "none" {
				ic.ClientID, ic.ClientSecret = rsID, rsSecret
			}
			as, g := opaqueSetup(t, opts, ic, tokenguard.Config{})
			if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+as.MintOpaque(nil)); w.Code != 404 {
				t.Fatalf("status %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			calls := as.IntrospectionCalls()
			if len(calls) != 1 || calls[0].AuthMethod != method {
				t.Errorf("calls %+v, want one by %s", calls, method)
			}
		})
	}
}

func TestIntrospectionRateLimitedServer(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{IntrospectionRateLimit: 5}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	tokens := make([]string, 50)
	for i := range tokens {
		tokens[i] = as.MintOpaque(oauthtest.Claims{"sub": fmt.Sprint("user-", i)})
	}
	as.ResetCounts()
	counts := map[int]int{}
	for i := range 1000 {
		counts[call(h, "Bearer "+tokens[i%50]).Code]++
	}
	if n := as.Requests("introspect"); n > 50 {
		t.Errorf("%d introspection calls for 50 tokens", n)
	}
	if counts[401] != 0 || counts[404]+counts[503] != 1000 {
		t.Errorf("outcomes %v: valid tokens must be accepted or 503, never 401", counts)
	}
	if counts[404] < 5 {
		t.Errorf("only %d accepted; the first 5 tokens fit the limit", counts[404])
	}
}

func TestOpaqueCacheIsBounded(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{CacheCapacity: 1000}, tokenguard.Config{
		HTTPClient: &http.Client{Transport: inactiveTransport{next: http.DefaultTransport}},
	})
	_ = as
	h := g.Handler(http.NotFoundHandler())
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	for i := range n {
		call(h, fmt.Sprintf("Bearer random-opaque-%d", i))
		if i%5000 == 0 && g.IntrospectionStats().Entries > 1000 {
			t.Fatalf("cache holds %d entries > capacity after %d tokens", g.IntrospectionStats().Entries, i)
		}
	}
	st := g.IntrospectionStats()
	if st.Entries > 1000 || st.Calls != int64(n) {
		t.Errorf("stats %+v", st)
	}
}

// inactiveTransport answers every introspection in-process with
// active:false, so a test can push 100,000 tokens through quickly.
type inactiveTransport struct{ next http.RoundTripper }

func (t inactiveTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/introspect") {
		return t.next.RoundTrip(r)
	}
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(`{"active":false}`)),
		Request:    r,
	}, nil
}

func TestJWTIntrospectionPolicy(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{JWTs: tokenguard.IntrospectJWTAlways}, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	tok := as.Mint(nil)
	if w := call(h, "Bearer "+tok); w.Code != 404 || as.Requests("introspect") != 1 {
		t.Fatalf("always: %d, %d calls", w.Code, as.Requests("introspect"))
	}
	revoked := as.Mint(nil)
	as.Revoke(revoked)
	if w := call(h, "Bearer "+revoked); w.Code != 401 {
		t.Errorf("revoked JWT with IntrospectJWTAlways: %d", w.Code)
	}

	as2, never := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	as2.ResetCounts()
	if w := call(never.Handler(http.NotFoundHandler()), "Bearer "+as2.Mint(nil)); w.Code != 404 || as2.Requests("introspect") != 0 {
		t.Errorf("never: %d, %d calls", w.Code, as2.Requests("introspect"))
	}
	// A JWE (5 parts) goes to introspection.
	if w := call(never.Handler(http.NotFoundHandler()), "Bearer eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d"); w.Code != 401 || as2.Requests("introspect") != 1 {
		t.Errorf("JWE: %d, %d calls", w.Code, as2.Requests("introspect"))
	}
}

var _ = context.Background

func TestIntrospectionConcurrencyLimit(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{MaxConcurrent: 1}, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	a, b := as.MintOpaque(nil), as.MintOpaque(nil)
	as.SetFault("introspect", &oauthtest.Fault{Delay: 200 * time.Millisecond, Times: 1})
	first := make(chan int)
	go func() { first <- call(h, "Bearer "+a).Code }()
	time.Sleep(50 * time.Millisecond) // a's call holds the only slot
	w := call(h, "Bearer "+b)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("second token while the slot is taken: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if code := <-first; code != 404 {
		t.Errorf("first token: %d", code)
	}
	if w := call(h, "Bearer "+b); w.Code != 404 {
		t.Errorf("second token once the slot is free: %d", w.Code)
	}
}

func TestIntrospectUnknownIssuerPolicy(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{JWTs: tokenguard.IntrospectJWTUnknownIssuer}, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	as.ResetCounts()
	// A trusted issuer's JWT is validated locally: no call.
	if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 404 || as.Requests("introspect") != 0 {
		t.Fatalf("trusted JWT: %d, %d calls", w.Code, as.Requests("introspect"))
	}
	// A JWT under another iss name is refused without a call, even if
	// this server would vouch for it: a server is asked only about tokens
	// of its own issuer.
	foreign := as.Mint(oauthtest.Claims{"iss": "https://legacy.example"})
	w := call(h, "Bearer "+foreign)
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "untrusted issuer"); w.Code != 401 || got != want || as.Requests("introspect") != 0 {
		t.Errorf("JWT of an unknown issuer: %d %s, %d calls", w.Code, got, as.Requests("introspect"))
	}
	// A JWS that cannot be parsed and has no readable iss is refused
	// without a call: it never takes the opaque route.
	w = call(h, "Bearer eyJhbGciOg.e30.c2ln")
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "malformed token"); w.Code != 401 || got != want || as.Requests("introspect") != 0 {
		t.Errorf("unparseable JWS: %d %s, %d calls", w.Code, got, as.Requests("introspect"))
	}
	// One the strict parser refuses (a header typ that is not a string)
	// whose iss, read leniently, is the trusted issuer goes there, and it
	// vouches for it.
	if w := call(h, "Bearer "+as.MintWith(oauthtest.MintOptions{Header: map[string]any{"typ": 5}})); w.Code != 404 || as.Requests("introspect") != 1 {
		t.Errorf("JWT with a numeric typ: %d %s, %d calls", w.Code, w.Header().Get("WWW-Authenticate"), as.Requests("introspect"))
	}
	// A bad signature by a trusted issuer is not a reason to introspect.
	tampered := as.Mint(nil)
	tampered = tampered[:len(tampered)-4] + "AAAA"
	if w := call(h, "Bearer "+tampered); w.Code != 401 || as.Requests("introspect") != 1 {
		t.Errorf("tampered JWT: %d, %d calls", w.Code, as.Requests("introspect"))
	}
}

func TestOpaquePrincipalIsPerRequest(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		if p.Subject != "carol" || strings.Join(p.Scopes, " ") != "a b" || len(p.Audience) != 1 || p.Audience[0] != as.Resource() {
			w.WriteHeader(http.StatusConflict)
			return
		}
		// Scribbling on the lists too: they are the request's own.
		p.Subject, p.Scopes[0], p.Audience[0] = "mallory", "admin", "elsewhere"
	}))
	tok := as.MintOpaque(oauthtest.Claims{"sub": "carol", "scope": "a b", "aud": as.Resource()})
	for i := range 3 {
		if w := call(h, "Bearer "+tok); w.Code != 200 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
}

// deepJSON is n nested arrays.
func deepJSON(n int) any {
	var v any = []any{}
	for range n - 1 {
		v = []any{v}
	}
	return v
}
