package tokenguard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestTwoIssuers(t *testing.T) {
	a := newAS(t, oauthtest.Options{Algorithms: []string{"RS256"}})
	b := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	g := newGuard(t, a, tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{
			{Issuer: a.Issuer, Audience: a.Resource()},
			{Issuer: b.Issuer, Audience: "https://b-api.example", Algorithms: []string{"ES256"}},
		},
	})
	h := g.Handler(http.NotFoundHandler())
	if got := g.Issuers(); len(got) != 2 {
		t.Fatalf("issuers %v", got)
	}
	for _, tc := range []struct {
		name, token string
		status      int
		desc        string
	}{
		{"A's token", a.Mint(nil), 404, ""},
		{"B's token, B's audience", b.Mint(oauthtest.Claims{"aud": "https://b-api.example"}), 404, ""},
		{"B's token, A's audience", b.Mint(oauthtest.Claims{"aud": a.Resource()}), 401, "token not meant for this resource"},
		// B signs a token that claims to be A's: routed to A's keys, which do not verify it.
		{"claims A with A's kid, signed by B", b.MintWith(oauthtest.MintOptions{Claims: oauthtest.Claims{"iss": a.Issuer, "aud": a.Resource()}, Header: map[string]any{"kid": a.KeyIDs()[0]}}), 401, "unknown signing key"},
		{"claims A with A's kid as RS256, signed by B", b.MintWith(oauthtest.MintOptions{Claims: oauthtest.Claims{"iss": a.Issuer, "aud": a.Resource()}, Header: map[string]any{"kid": a.KeyIDs()[0], "alg": "RS256"}}), 401, "invalid signature"},
		{"claims A with B's kid", b.MintWith(oauthtest.MintOptions{Claims: oauthtest.Claims{"iss": a.Issuer, "aud": a.Resource()}}), 401, "unknown signing key"},
		{"claims B, signed by A", a.MintWith(oauthtest.MintOptions{Claims: oauthtest.Claims{"iss": b.Issuer, "aud": "https://b-api.example"}}), 401, "signature algorithm not allowed"},
		{"claims B, signed by A as ES256 header", a.MintWith(oauthtest.MintOptions{Claims: oauthtest.Claims{"iss": b.Issuer, "aud": "https://b-api.example"}, Header: map[string]any{"alg": "ES256", "kid": b.KeyIDs()[0]}}), 401, "invalid signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := call(h, "Bearer "+tc.token)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.status, w.Header().Get("WWW-Authenticate"))
			}
			if tc.desc != "" && !strings.Contains(w.Header().Get("WWW-Authenticate"), `error_description="`+tc.desc+`"`) {
				t.Errorf("WWW-Authenticate %s, want %q", w.Header().Get("WWW-Authenticate"), tc.desc)
			}
		})
	}
}

// tenantServer serves RFC 8414 metadata for any tenant under /t/<name>,
// all sharing one key set, and counts what it is asked.
type tenantServer struct {
	*httptest.Server
	keys      *oauthtest.Server
	discovery atomic.Int64
	mu        sync.Mutex
	asked     map[string]int
}

func newTenantServer(t *testing.T) *tenantServer {
	ts := &tenantServer{keys: newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}}), asked: map[string]int{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.discovery.Add(1)
		tenant, ok := strings.CutPrefix(r.URL.Path, "/.well-known/oauth-authorization-server/t/")
		ts.mu.Lock()
		ts.asked[tenant]++
		ts.mu.Unlock()
		if !ok || strings.HasPrefix(tenant, "missing") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"issuer": ts.URL + "/t/" + tenant, "jwks_uri": ts.keys.JWKSURL()})
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tenantServer) token(tenant string) string {
	return ts.keys.Mint(oauthtest.Claims{"iss": ts.URL + "/t/" + tenant, "aud": "https://api.example"})
}

func TestPatternIssuers(t *testing.T) {
	ts := newTenantServer(t)
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers:           []tokenguard.TrustedIssuer{{Issuer: ts.URL + "/t/*", Audience: "https://api.example"}},
		MaxPatternIssuers: 5,
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	h := g.Handler(http.NotFoundHandler())

	// First use discovers; later uses do not.
	for range 3 {
		if w := call(h, "Bearer "+ts.token("acme")); w.Code != 404 {
			t.Fatalf("tenant token: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	if n := ts.discovery.Load(); n != 1 {
		t.Errorf("%d discovery requests for one tenant, want 1", n)
	}

	// Issuers outside the pattern cause no request at all.
	ts.discovery.Store(0)
	jwksBefore := ts.keys.Requests("jwks")
	for _, iss := range []string{
		ts.URL + "/t/acme/../../evil", ts.URL + "/t/a.b", ts.URL + "/t/", ts.URL + "/x/acme",
		"https://evil.example/t/acme", ts.URL + "/t/acme?x=1", ts.URL + "/t/a%2Fb", ts.URL + "/t/a@evil.example",
	} {
		w := call(h, "Bearer "+ts.keys.Mint(oauthtest.Claims{"iss": iss, "aud": "https://api.example"}))
		if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "untrusted issuer") {
			t.Errorf("iss %q: %d %s", iss, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	if n, j := ts.discovery.Load(), ts.keys.Requests("jwks")-jwksBefore; n != 0 || j != 0 {
		t.Errorf("issuers outside the pattern caused %d discovery and %d JWKS requests, want 0", n, j)
	}

	// A tenant that does not exist: one discovery, then remembered.
	for range 5 {
		if w := call(h, "Bearer "+ts.token("missing1")); w.Code != 401 {
			t.Errorf("missing tenant: %d", w.Code)
		}
	}
	if n := ts.asked["missing1"]; n != 1 {
		t.Errorf("missing tenant discovered %d times, want 1", n)
	}

	// A flood of distinct allowed issuers: the bound holds.
	for i := range 50 {
		call(h, "Bearer "+ts.token(fmt.Sprint("tenant", i)))
	}
	if n := len(g.Issuers()); n != 0 {
		t.Errorf("static issuers %d", n)
	}
	if n := g.PatternIssuers(); n > 5 {
		t.Errorf("%d pattern issuers kept, bound is 5", n)
	}
	// A recently used tenant still works after the flood.
	if w := call(h, "Bearer "+ts.token("tenant49")); w.Code != 404 {
		t.Errorf("recent tenant after the flood: %d", w.Code)
	}
}

func TestIssuerPatternValidation(t *testing.T) {
	for _, p := range []string{"https://a/*/*", "http://a/*", "*://a/b", "https://a/*?q=1"} {
		_, err := tokenguard.New(context.Background(), tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: p, Audience: "x"}}})
		if err == nil {
			t.Errorf("pattern %q accepted", p)
		}
	}
}

func TestPerIssuerIntrospection(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	a.RegisterClient(rsID, rsSecret)
	b := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	g := newGuard(t, a, tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{
			{Issuer: a.Issuer, Introspect: tokenguard.IssuerIntrospectOn},
			{Issuer: b.Issuer, Introspect: tokenguard.IssuerIntrospectOff},
		},
		Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret, JWTs: tokenguard.IntrospectJWTAlways},
	})
	h := g.Handler(http.NotFoundHandler())
	a.ResetCounts()
	if w := call(h, "Bearer "+a.Mint(nil)); w.Code != 404 || a.Requests("introspect") != 1 {
		t.Errorf("A's token: %d, %d introspection calls", w.Code, a.Requests("introspect"))
	}
	revoked := a.Mint(nil)
	a.Revoke(revoked)
	if w := call(h, "Bearer "+revoked); w.Code != 401 {
		t.Errorf("A's revoked token: %d", w.Code)
	}
	a.ResetCounts()
	if w := call(h, "Bearer "+b.Mint(oauthtest.Claims{"aud": a.Resource()})); w.Code != 404 || a.Requests("introspect") != 0 {
		t.Errorf("B's token (introspection off for B): %d, %d calls", w.Code, a.Requests("introspect"))
	}
	if _, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspect: tokenguard.IssuerIntrospectOn}}, InsecureAllowHTTP: true,
	}); err == nil {
		t.Error("Introspect on without introspection configured: accepted")
	}
}

// A pattern's "*" stands for a bounded label: a token naming a longer
// one is from an untrusted issuer, and nothing is fetched for it.
func TestAttackPatternLabelIsBounded(t *testing.T) {
	ts := newTenantServer(t)
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers:           []tokenguard.TrustedIssuer{{Issuer: ts.URL + "/t/*", Audience: "https://api.example"}},
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	h := g.Handler(http.NotFoundHandler())
	if w := call(h, "Bearer "+ts.token(strings.Repeat("a", 128))); w.Code != 404 {
		t.Fatalf("a 128-character tenant: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	before := ts.discovery.Load()
	w := call(h, "Bearer "+ts.token(strings.Repeat("a", 129)))
	if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "untrusted issuer") {
		t.Fatalf("a 129-character tenant: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if n := ts.discovery.Load() - before; n != 0 {
		t.Fatalf("a 129-character tenant caused %d discovery requests", n)
	}
}
