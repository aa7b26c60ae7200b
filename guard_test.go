package tokenguard_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestKeyRotation(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	g := newGuard(t, as, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	if n := as.Requests("jwks"); n != 1 {
		t.Fatalf("start-up made %d JWKS fetches", n)
	}

	// A new key validates after exactly one fetch.
	as.RotateKey("RS256")
	if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 404 {
		t.Fatalf("token by the rotated key: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if n := as.Requests("jwks"); n != 2 {
		t.Errorf("rotation made %d fetches in all, want 2", n)
	}

	// 200 concurrent requests with another new kid: one fetch, all accepted.
	time.Sleep(10 * time.Millisecond)
	as.ResetCounts()
	g2 := newGuard(t, as, tokenguard.Config{})
	h2 := g2.Handler(http.NotFoundHandler())
	as.ResetCounts()
	as.RotateKey("RS256")
	tok := as.Mint(nil)
	as.SetFault("jwks", &oauthtest.Fault{Delay: 50 * time.Millisecond}) // hold the fetch open while the herd arrives
	var wg sync.WaitGroup
	var ok atomic.Int64
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if w := call(h2, "Bearer "+tok); w.Code == 404 {
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	as.SetFault("jwks", nil)
	if n := as.Requests("jwks"); n != 1 {
		t.Errorf("200 concurrent requests with a new kid made %d fetches, want 1", n)
	}
	if ok.Load() != 200 {
		t.Errorf("%d of 200 accepted", ok.Load())
	}

	// A retired key stops verifying once a refresh has replaced the set.
	h3 := newGuard(t, as, tokenguard.Config{UnknownKeyCooldown: time.Millisecond}).Handler(http.NotFoundHandler())
	old := as.KeyIDs()[0]
	oldTok := as.MintWith(oauthtest.MintOptions{KeyID: old})
	if w := call(h3, "Bearer "+oldTok); w.Code != 404 {
		t.Fatalf("token by a published key: %d", w.Code)
	}
	as.RetireKey(old)
	as.RotateKey("RS256")
	time.Sleep(5 * time.Millisecond)
	call(h3, "Bearer "+as.Mint(nil)) // the unknown kid triggers the refresh
	if w := call(h3, "Bearer "+oldTok); w.Code != 401 {
		t.Errorf("token by a retired key after refresh: %d", w.Code)
	}
}

func TestRandomKidFlood(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	cooldown := 200 * time.Millisecond
	g := newGuard(t, as, tokenguard.Config{UnknownKeyCooldown: cooldown})
	h := g.Handler(http.NotFoundHandler())
	as.ResetCounts()
	start := time.Now()
	rejected := 0
	for i := range 1000 {
		tok := as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": fmt.Sprintf("random-%d", i)}})
		if w := call(h, "Bearer "+tok); w.Code == 401 {
			rejected++
		}
	}
	elapsed := time.Since(start)
	allowed := int(elapsed/cooldown) + 1
	if n := as.Requests("jwks"); n > allowed {
		t.Errorf("1,000 random kids in %s made %d fetches; the rate limit allows %d", elapsed, n, allowed)
	}
	if rejected != 1000 {
		t.Errorf("%d of 1000 rejected", rejected)
	}
	// A real rotation is still picked up within one cooldown.
	as.RotateKey("RS256")
	time.Sleep(cooldown)
	if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 404 {
		t.Errorf("rotated key after the flood: %d", w.Code)
	}
}

func TestKeysUnavailableIs503(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	g := newGuard(t, as, tokenguard.Config{})
	as.RotateKey("RS256")
	as.SetFault("jwks", &oauthtest.Fault{Status: http.StatusInternalServerError})
	var rc reached
	w := call(g.Handler(rc.handler()), "Bearer "+as.Mint(nil))
	if w.Code != http.StatusServiceUnavailable || rc.called {
		t.Fatalf("status %d, reached %v", w.Code, rc.called)
	}
	if w.Header().Get("Retry-After") != "5" {
		t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	if w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("a 503 carries a challenge: %s", w.Header().Get("WWW-Authenticate"))
	}
	if !strings.Contains(w.Body.String(), `"error":"temporarily_unavailable"`) {
		t.Errorf("body %s", w.Body.String())
	}
}

func TestRealServerShapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts oauthtest.Options
	}{
		{"OpenID discovery only", oauthtest.Options{OpenIDOnly: true}},
		{"issuer with a path", oauthtest.Options{IssuerPath: "/dex"}},
		{"issuer with a trailing slash", oauthtest.Options{IssuerPath: "/"}},
		{"tenant issuer with a trailing slash", oauthtest.Options{IssuerPath: "/tenant/"}},
		{"JWKS with no-store", oauthtest.Options{JWKSCacheControl: "no-store"}},
		{"seed layout under /v2/oauth", oauthtest.Options{Prefix: "/v2/oauth"}},
		{"resource at the root", oauthtest.Options{Resource: "/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := newAS(t, tc.opts)
			g := newGuard(t, as, tokenguard.Config{})
			if got := g.Issuers(); len(got) != 1 || got[0] != as.Issuer {
				t.Errorf("issuers %v, want [%s]", got, as.Issuer)
			}
			if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+as.Mint(nil)); w.Code != 404 {
				t.Errorf("valid token: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestMixedKeySet(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	as.PublishExtraKey(map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"})
	as.PublishExtraKey(map[string]any{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"})
	as.PublishExtraKey(map[string]any{"kty": "AKP", "kid": "pq", "alg": "ML-DSA-65", "pub": "AAAA"})
	g := newGuard(t, as, tokenguard.Config{})
	if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+as.Mint(nil)); w.Code != 404 {
		t.Errorf("valid token beside unusable keys: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestConfigurationShortcuts(t *testing.T) {
	as := shared(t)
	tok := as.Mint(nil)
	for _, tc := range []struct {
		name string
		cfg  tokenguard.Config
		docs []string // endpoints that must have been fetched by New
	}{
		{"issuer only", tokenguard.Config{Issuer: as.Issuer, Resource: as.Resource()}, []string{"server_metadata", "jwks"}},
		{"issuer and JWKS URL", tokenguard.Config{Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: as.Resource()}, []string{"jwks"}},
		{"resource only", tokenguard.Config{Resource: as.Resource()}, []string{"resource_metadata", "server_metadata", "jwks"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as.ResetCounts()
			g := newGuard(t, as, tc.cfg)
			total := 0
			for _, ep := range []string{"resource_metadata", "server_metadata", "openid_configuration", "jwks"} {
				total += as.Requests(ep)
			}
			want := 0
			for _, ep := range tc.docs {
				if as.Requests(ep) != 1 {
					t.Errorf("%s fetched %d times, want 1", ep, as.Requests(ep))
				}
				want++
			}
			if total != want {
				t.Errorf("New made %d discovery requests, want %d", total, want)
			}
			if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+tok); w.Code != 404 {
				t.Errorf("valid token: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestNewFailsClearly(t *testing.T) {
	as := shared(t)
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"resource":"x","pad":"%s"}`, strings.Repeat("a", 2<<20))
	}))
	defer big.Close()
	wrongIssuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":"https://evil.example","jwks_uri":%q}`, as.JWKSURL())
	}))
	defer wrongIssuer.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name     string
		cfg      tokenguard.Config
		insecure bool
		want     []string
	}{
		{"nothing to discover", tokenguard.Config{}, true, []string{"set ResourceMetadataURL, Resource or Issuer"}},
		{"issuer mismatch", tokenguard.Config{Issuer: wrongIssuer.URL, Resource: "https://api"}, true, []string{"issuer", wrongIssuer.URL}},
		{"resource mismatch", tokenguard.Config{ResourceMetadataURL: as.ResourceMetadataURL(), Resource: "https://other.example/api"}, true, []string{"resource", as.ResourceMetadataURL()}},
		{"plain HTTP without opt-in", tokenguard.Config{ResourceMetadataURL: as.ResourceMetadataURL()}, false, []string{"https required", as.ResourceMetadataURL(), "InsecureAllowHTTP"}},
		{"oversized document", tokenguard.Config{ResourceMetadataURL: big.URL + "/.well-known/oauth-protected-resource"}, true, []string{"too large", big.URL}},
		{"server down", tokenguard.Config{ResourceMetadataURL: down + "/.well-known/oauth-protected-resource"}, true, []string{down, "connect"}},
		{"symmetric algorithm", tokenguard.Config{Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: "x", Algorithms: []string{"HS256"}}, true, []string{`"HS256" is not allowed`}},
		{"alg none", tokenguard.Config{Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: "x", Algorithms: []string{"none"}}, true, []string{`"none" is not allowed`}},
		{"algorithm in the wrong case", tokenguard.Config{Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: "x", Algorithms: []string{"rs256"}}, true, []string{`unknown algorithm "rs256"`, `did you mean "RS256"`}},
		{"unknown algorithm", tokenguard.Config{Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: "x", Algorithms: []string{"RSA-OAEP"}}, true, []string{`unknown algorithm "RSA-OAEP"`, "supported"}},
		{"no audience", tokenguard.Config{Issuer: as.Issuer, JWKSURL: as.JWKSURL()}, true, []string{"no audience"}},
		{"JWKS URL without issuer", tokenguard.Config{JWKSURL: as.JWKSURL(), Audience: "x"}, true, []string{"needs Config.Issuer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.InsecureAllowHTTP = tc.insecure
			g, err := tokenguard.New(context.Background(), cfg)
			if err == nil {
				g.Close()
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestCloseLeavesNoGoroutine(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	tok := as.Mint(nil)
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	for range 3 {
		g, err := tokenguard.New(context.Background(), tokenguard.Config{
			ResourceMetadataURL: as.ResourceMetadataURL(), InsecureAllowHTTP: true,
			KeyRefreshMin: 10 * time.Millisecond, KeyRefreshMax: 10 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		call(g.Handler(http.NotFoundHandler()), "Bearer "+tok)
		time.Sleep(30 * time.Millisecond) // let background refreshes run
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestStartupHonoursContext(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	as.SetFault("jwks", &oauthtest.Fault{Delay: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := tokenguard.New(ctx, tokenguard.Config{ResourceMetadataURL: as.ResourceMetadataURL(), InsecureAllowHTTP: true})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("New took %s past its context", d)
	}
}
