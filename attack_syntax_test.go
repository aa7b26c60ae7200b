package tokenguard_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Since the b64token check moved from extract into judgeToken (after the
// verified-token cache), a malformed token must still get exactly 400
// invalid_request in every configuration, and must reach no introspection
// call, no JWKS fetch, no cache entry, no handler, and no log line but the
// rejection (which never names the token).
func TestAttackMalformedTokenNeverPassesSyntaxGate(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	as.RegisterClient(rsID, rsSecret)
	untrusted := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})

	good := as.Mint(oauthtest.Claims{"scope": "a"})
	foreign := untrusted.Mint(nil)                        // iss not trusted: never introspected
	strangeSub := as.Mint(oauthtest.Claims{"sub": 12345}) // refused by the parser; iss trusted
	dot1 := strings.IndexByte(good, '.')
	malformed := map[string]string{
		"bad byte in signature":           good[:len(good)-3] + "!" + good[len(good)-2:],
		"bad byte in payload":             good[:dot1+3] + "!" + good[dot1+4:], // Decode would fail: introspectable
		"padding inside":                  good[:len(good)-5] + "=" + good[len(good)-4:],
		"space inside":                    good[:dot1] + " " + good[dot1:],
		"trailing comma":                  good + ",",
		"untrusted issuer, bad byte":      foreign[:len(foreign)-3] + "!" + foreign[len(foreign)-2:],
		"untrusted issuer, quote":         foreign + `"`,
		"JWS-shaped junk":                 "eyJ!.a.b",
		"JWS-shaped, high byte":           "ey\x80.a.b",
		"opaque, bad byte":                as.MintOpaque(nil) + "!",
		"opaque, backslash":               `abc\def`,
		"only padding":                    "==",
		"long JWS-shaped, DEL at the end": "ey" + strings.Repeat("A", 4000) + ".a.b\x7f",
	}

	type delivery struct {
		name string
		req  func(tok string) *http.Request
	}
	deliveries := []delivery{
		{"header", func(tok string) *http.Request {
			r := httptest.NewRequest("GET", "/orders", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		}},
		{"form", func(tok string) *http.Request {
			r := httptest.NewRequest("POST", "/orders", strings.NewReader("access_token="+url.QueryEscape(tok)))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}},
		{"query", func(tok string) *http.Request {
			return httptest.NewRequest("GET", "/orders?access_token="+url.QueryEscape(tok), nil)
		}},
	}
	intros := []struct {
		name string
		ic   *tokenguard.IntrospectionConfig
	}{
		{"no introspection", nil},
		{"JWTs never", &tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret, JWTs: tokenguard.IntrospectJWTNever}},
		{"JWTs unknown issuer", &tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret, JWTs: tokenguard.IntrospectJWTUnknownIssuer}},
		{"JWTs always", &tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret, JWTs: tokenguard.IntrospectJWTAlways}},
	}

	for _, in := range intros {
		for _, cacheSize := range []int{0, -1} {
			var buf bytes.Buffer
			var mu sync.Mutex
			logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				return buf.Write(p)
			}), &slog.HandlerOptions{Level: slog.LevelDebug}))
			cfg := tokenguard.Config{TokenCacheSize: cacheSize, AllowFormToken: true, AllowQueryToken: true, Logger: logger}
			if in.ic != nil {
				cfg.Introspection = *in.ic
			}
			g := newGuard(t, as, cfg)
			var reached bool
			h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
			bad := wantChallenge(g, "invalid_request", "token has characters a bearer token cannot have")

			// The valid token is cached (JWT cache, and the introspection
			// cache under JWTs always), so its variants are one byte from a hit.
			if w := call(h, "Bearer "+good); w.Code != 200 || !reached {
				t.Fatalf("%s, cache %d: valid token: %d %s", in.name, cacheSize, w.Code, w.Header().Get("WWW-Authenticate"))
			}
			// Control: a JWT of the trusted issuer that the strict parser
			// refuses (a numeric sub) is introspected there under the
			// unknown-issuer policy, so the counter below can see a call;
			// the untampered foreign token names an untrusted issuer and is
			// never sent anywhere.
			before := as.Requests(oauthtest.EndpointIntrospect)
			call(h, "Bearer "+strangeSub)
			if got := as.Requests(oauthtest.EndpointIntrospect) - before; (got == 1) != (in.name == "JWTs unknown issuer") {
				t.Fatalf("%s: control: JWT with a numeric sub made %d introspection calls", in.name, got)
			}
			if w := call(h, "Bearer "+foreign); w.Code != 401 || untrusted.Requests(oauthtest.EndpointIntrospect) != 0 || as.Requests(oauthtest.EndpointIntrospect)-before > 1 {
				t.Fatalf("%s: untrusted issuer's token: %d, %d calls to it", in.name, w.Code, untrusted.Requests(oauthtest.EndpointIntrospect))
			}
			entries := g.TokenCacheStats().Entries

			for _, d := range deliveries {
				for name, tok := range malformed {
					intro, jwks := as.Requests(oauthtest.EndpointIntrospect), as.Requests(oauthtest.EndpointJWKS)
					uintro, ujwks := untrusted.Requests(oauthtest.EndpointIntrospect), untrusted.Requests(oauthtest.EndpointJWKS)
					mu.Lock()
					buf.Reset()
					mu.Unlock()
					reached = false
					w := httptest.NewRecorder()
					h.ServeHTTP(w, d.req(tok))
					where := in.name + ", cache " + map[bool]string{true: "on", false: "off"}[cacheSize >= 0] + ", " + d.name + ", " + name
					if w.Code != 400 || w.Header().Get("WWW-Authenticate") != bad || reached {
						t.Errorf("%s: %d %q (handler reached: %v); want 400 %q", where, w.Code, w.Header().Get("WWW-Authenticate"), reached, bad)
					}
					if n := as.Requests(oauthtest.EndpointIntrospect) - intro; n != 0 {
						t.Errorf("%s: %d introspection calls", where, n)
					}
					if n := untrusted.Requests(oauthtest.EndpointIntrospect) - uintro; n != 0 {
						t.Errorf("%s: %d introspection calls to the untrusted server", where, n)
					}
					if n := as.Requests(oauthtest.EndpointJWKS) - jwks + untrusted.Requests(oauthtest.EndpointJWKS) - ujwks; n != 0 {
						t.Errorf("%s: %d JWKS fetches", where, n)
					}
					if n := g.TokenCacheStats().Entries; n != entries {
						t.Errorf("%s: token cache entries %d, want %d", where, n, entries)
					}
					mu.Lock()
					logged := buf.String()
					mu.Unlock()
					if strings.Count(logged, "\n") != 1 || !strings.Contains(logged, "status=400") {
						t.Errorf("%s: log %q, want one rejection line with status=400", where, logged)
					}
					if len(tok) >= 8 && strings.Contains(logged, tok[:8]) {
						t.Errorf("%s: log names the token: %q", where, logged)
					}
				}
			}
		}
	}
}

// A malformed token whose iss matches a pattern issuer must be refused
// before the pattern issuer is discovered, with the cache on or off and
// whether or not the tenant is already known.
func TestAttackMalformedTokenDiscoversNoPatternIssuer(t *testing.T) {
	const bad = `Bearer error="invalid_request", error_description="token has characters a bearer token cannot have"` // no resource, no realm
	for _, cacheSize := range []int{0, -1} {
		ts := newTenantServer(t)
		ts.keys.RegisterClient(rsID, rsSecret)
		g, err := tokenguard.New(context.Background(), tokenguard.Config{
			Issuers:           []tokenguard.TrustedIssuer{{Issuer: ts.URL + "/t/*", Audience: "https://api.example"}},
			MaxPatternIssuers: 5,
			TokenCacheSize:    cacheSize,
			Introspection:     tokenguard.IntrospectionConfig{Endpoint: ts.keys.IntrospectionURL(), ClientID: rsID, ClientSecret: rsSecret, JWTs: tokenguard.IntrospectJWTUnknownIssuer},
			InsecureAllowHTTP: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		h := g.Handler(http.NotFoundHandler())
		known := ts.token("known")
		if w := call(h, "Bearer "+known); w.Code != 404 {
			t.Fatalf("cache %d: tenant token: %d %s", cacheSize, w.Code, w.Header().Get("WWW-Authenticate"))
		}
		fresh := ts.token("fresh")
		for _, tok := range []string{
			fresh[:len(fresh)-3] + "!" + fresh[len(fresh)-2:],
			fresh + ";",
			known[:len(known)-3] + "!" + known[len(known)-2:],
			known + "\t",
		} {
			disc, pats, intro := ts.discovery.Load(), g.PatternIssuers(), ts.keys.Requests(oauthtest.EndpointIntrospect)
			w := call(h, "Bearer "+tok)
			if w.Code != 400 || w.Header().Get("WWW-Authenticate") != bad {
				t.Errorf("cache %d, %q: %d %q", cacheSize, tok[len(tok)-6:], w.Code, w.Header().Get("WWW-Authenticate"))
			}
			if ts.discovery.Load() != disc || g.PatternIssuers() != pats {
				t.Errorf("cache %d, %q: a malformed token triggered discovery", cacheSize, tok[len(tok)-6:])
			}
			if n := ts.keys.Requests(oauthtest.EndpointIntrospect) - intro; n != 0 {
				t.Errorf("cache %d, %q: %d introspection calls", cacheSize, tok[len(tok)-6:], n)
			}
		}
	}
}
