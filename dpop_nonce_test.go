package tokenguard_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// dpopAlgs is the algs= of a DPoP challenge of a Guard with the default
// proof algorithms.
const dpopAlgs = `algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"`

// nonceKey is a NonceKey for tests: 32 bytes.
var nonceKey = bytes.Repeat([]byte("k"), 32)

// Server nonces (RFC 9449 §8, §9) from the attacker's side: a proof needs
// the current nonce of this API (or of a replica sharing its key), a proof
// made in advance dies with its nonce, and every refusal hands out the
// nonce to use.
func TestDPoPNonces(t *testing.T) {
	as := shared(t)
	clock := newFakeClock()
	cfg := tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer, Now: clock.Now, DPoP: tokenguard.DPoPConfig{
		Mode: tokenguard.DPoPAllowed, NonceKey: nonceKey, NonceLifetime: time.Minute,
	}}
	g := newGuard(t, as, cfg)
	replica := newGuard(t, as, cfg)
	otherKey := cfg
	otherKey.DPoP.NonceKey = bytes.Repeat([]byte("x"), 32)
	stranger := newGuard(t, as, otherKey)

	key := oauthtest.NewDPoPKey("ES256")
	token := as.Mint(key.Bind(oauthtest.Claims{"sub": "alice", "exp": clock.Now().Add(time.Hour).Unix(), "iat": clock.Now().Unix()}))
	url := strings.TrimSuffix(as.Resource(), "/api") + "/orders"
	send := func(g *tokenguard.Guard, nonce string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", key.ProofWith(oauthtest.ProofOptions{Method: "GET", URL: url, Token: token, Nonce: nonce, IssuedAt: clock.Now()}))
		w := httptest.NewRecorder()
		g.Handler(okHandler).ServeHTTP(w, r)
		return w
	}
	useNonce := []string{
		`DPoP realm="` + g.Resource() + `", ` + dpopAlgs + `, error="use_dpop_nonce", error_description="DPoP nonce required", resource_metadata="` + g.ResourceMetadataURL() + `"`,
		`Bearer realm="` + g.Resource() + `", resource_metadata="` + g.ResourceMetadataURL() + `"`,
	}
	refused := func(what string, w *httptest.ResponseRecorder) string {
		t.Helper()
		if w.Code != http.StatusUnauthorized || strings.Join(w.Header().Values("WWW-Authenticate"), "\n") != strings.Join(useNonce, "\n") {
			t.Fatalf("%s: %d %q, want 401 use_dpop_nonce", what, w.Code, w.Header().Values("WWW-Authenticate"))
		}
		if !strings.Contains(w.Body.String(), `"error":"use_dpop_nonce"`) {
			t.Errorf("%s: body %s", what, w.Body)
		}
		n := w.Header().Get("DPoP-Nonce")
		if n == "" {
			t.Fatalf("%s: no DPoP-Nonce", what)
		}
		return n
	}

	nonce := refused("no nonce", send(g, ""))
	if w := send(g, nonce); w.Code != 200 || w.Header().Get("DPoP-Nonce") != nonce {
		t.Fatalf("with the nonce: %d, DPoP-Nonce %q", w.Code, w.Header().Get("DPoP-Nonce"))
	}
	if w := send(replica, nonce); w.Code != 200 {
		t.Fatalf("a replica sharing the key: %d %q", w.Code, w.Header().Values("WWW-Authenticate"))
	}
	if n := refused("a nonce of another key", send(stranger, nonce)); n == nonce {
		t.Error("two keys issued the same nonce")
	}
	forged := []byte(nonce)
	forged[len(forged)-2] ^= 1
	refused("a forged nonce", send(g, string(forged)))
	refused("a made-up nonce", send(g, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
	refused("a nonce of other NQCHARs", send(g, "!~#"))

	clock.Advance(time.Minute)
	w := send(g, nonce)
	if w.Code != 200 {
		t.Fatalf("the nonce one lifetime on: %d %q", w.Code, w.Header().Values("WWW-Authenticate"))
	}
	fresh := w.Header().Get("DPoP-Nonce")
	if fresh == nonce || fresh == "" {
		t.Fatalf("no newer nonce handed out one lifetime on: %q", fresh)
	}
	clock.Advance(time.Minute)
	if n := refused("the nonce two lifetimes on", send(g, nonce)); n != fresh && n == nonce {
		t.Fatalf("refused with the stale nonce %q", n)
	}
	if w := send(g, fresh); w.Code != 200 {
		t.Fatalf("the newer nonce: %d", w.Code)
	}

	// A replica whose clock is one step ahead issues a nonce the others
	// take; two steps ahead is refused.
	ahead := newFakeClock()
	ahead.Advance(clock.Now().Sub(ahead.Now()) + time.Minute)
	fast := cfg
	fast.Now = ahead.Now
	early := refused("no nonce at the fast replica", send(newGuard(t, as, fast), ""))
	if w := send(g, early); w.Code != 200 {
		t.Fatalf("a nonce one step early: %d", w.Code)
	}
	ahead.Advance(time.Minute)
	early2 := refused("no nonce at the fast replica", send(newGuard(t, as, fast), ""))
	refused("a nonce two steps early", send(g, early2))

	// A Bearer request is untouched by nonces, and gets none.
	bearer := as.Mint(oauthtest.Claims{"exp": clock.Now().Add(time.Hour).Unix(), "iat": clock.Now().Unix()})
	if w := call(g.Handler(okHandler), "Bearer "+bearer); w.Code != 200 || w.Header().Get("DPoP-Nonce") != "" {
		t.Fatalf("bearer: %d, DPoP-Nonce %q", w.Code, w.Header().Get("DPoP-Nonce"))
	}
	if g.DPoPNonce() == "" || newGuard(t, as, tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer}).DPoPNonce() != "" {
		t.Error("DPoPNonce: want one with NonceKey, none without")
	}
}

// oauthtest's DPoP client learns the nonce from the first refusal, sends
// the request again with it, and keeps it for the next request.
func TestDPoPClientFollowsNonces(t *testing.T) {
	as := shared(t)
	var hits atomic.Int32
	var g *tokenguard.Guard
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			p, _ := tokenguard.PrincipalFrom(r.Context())
			_, _ = w.Write([]byte(p.Subject + ":" + string(body)))
		})).ServeHTTP(w, r)
	}))
	defer srv.Close()
	g = newGuard(t, as, tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer, DPoP: tokenguard.DPoPConfig{
		Mode: tokenguard.DPoPRequired, Origin: srv.URL, NonceKey: nonceKey,
	}})
	key := oauthtest.NewDPoPKey("EdDSA")
	c := as.DPoPClient(key, as.Mint(key.Bind(oauthtest.Claims{"sub": "alice"})))
	for i, want := range []int32{2, 1} {
		hits.Store(0)
		req, _ := http.NewRequestWithContext(context.Background(), "POST", srv.URL+"/orders?page=2", strings.NewReader("body"))
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != "alice:body" || hits.Load() != want {
			t.Fatalf("request %d: %d %q after %d requests, want 200 after %d", i, res.StatusCode, body, hits.Load(), want)
		}
	}
}

// Nonces are configured or refused at New, never half on.
func TestDPoPNonceConfig(t *testing.T) {
	as := shared(t)
	for _, c := range []struct {
		dpop tokenguard.DPoPConfig
		want string
	}{
		{tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, NonceKey: []byte("short")}, "NonceKey has 5 bytes, want at least 32"},
		{tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, NonceLifetime: time.Minute}, "NonceLifetime is set without a NonceKey"},
		{tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, NonceKey: nonceKey, NonceLifetime: time.Millisecond}, "is not a lifetime of a second or more"},
		{tokenguard.DPoPConfig{NonceKey: nonceKey}, "no issuer takes DPoP"},
		{tokenguard.DPoPConfig{Mode: 7}, "Config.DPoP.Mode 7 is not a mode"},
	} {
		_, err := tokenguard.New(context.Background(), tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer, InsecureAllowHTTP: true, DPoP: c.dpop})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.dpop, err, c.want)
		}
	}
}

// Per-issuer DPoP modes: each issuer's tokens are judged by its own mode,
// and the challenge of a refusal follows it.
func TestDPoPPerIssuer(t *testing.T) {
	a := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	b := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	origin := "https://api.example"
	url := origin + "/orders"
	key := oauthtest.NewDPoPKey("ES256")
	send := func(g *tokenguard.Guard, scheme, token string, proof bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/orders", nil)
		if scheme != "" {
			r.Header.Set("Authorization", scheme+" "+token)
		}
		if proof {
			r.Header.Set("DPoP", key.Proof("GET", url, token))
		}
		w := httptest.NewRecorder()
		g.Handler(okHandler).ServeHTTP(w, r)
		return w
	}
	bearerOnly := func(g *tokenguard.Guard, code, desc string) []string {
		if code == "" {
			return []string{`Bearer realm="` + g.Resource() + `", resource_metadata="` + g.ResourceMetadataURL() + `"`}
		}
		return []string{`Bearer realm="` + g.Resource() + `", error="` + code + `", error_description="` + desc + `", resource_metadata="` + g.ResourceMetadataURL() + `"`}
	}
	dpopOnly := func(g *tokenguard.Guard, code, desc string) []string {
		return []string{`DPoP realm="` + g.Resource() + `", ` + dpopAlgs + `, error="` + code + `", error_description="` + desc + `", resource_metadata="` + g.ResourceMetadataURL() + `"`}
	}
	dpopFirst := func(g *tokenguard.Guard, code, desc string) []string {
		return append(dpopOnly(g, code, desc), bearerOnly(g, "", "")...)
	}
	type row struct {
		what          string
		scheme, token string
		proof         bool
		status        int
		challenges    func(g *tokenguard.Guard) []string
	}
	check := func(t *testing.T, g *tokenguard.Guard, rows []row) {
		for _, c := range rows {
			w := send(g, c.scheme, c.token, c.proof)
			var want []string
			if c.challenges != nil {
				want = c.challenges(g)
			}
			if w.Code != c.status || strings.Join(w.Header().Values("WWW-Authenticate"), "\n") != strings.Join(want, "\n") {
				t.Errorf("%s: %d %q\nwant %d %q", c.what, w.Code, w.Header().Values("WWW-Authenticate"), c.status, want)
			}
		}
	}
	claims := func(as *oauthtest.Server) oauthtest.Claims {
		return oauthtest.Claims{"aud": "https://api.example/orders"}
	}

	t.Run("Guard off, one issuer allowed", func(t *testing.T) {
		g := newGuard(t, a, tokenguard.Config{Resource: "https://api.example/orders", Issuer: a.Issuer, DPoP: tokenguard.DPoPConfig{Origin: origin}, Issuers: []tokenguard.TrustedIssuer{
			{Issuer: a.Issuer, DPoP: tokenguard.DPoPAllowed},
			{Issuer: b.Issuer},
		}})
		aBound, bBound := a.Mint(key.Bind(claims(a))), b.Mint(key.Bind(claims(b)))
		check(t, g, []row{
			{"A's bound token with its proof", "DPoP", aBound, true, 200, nil},
			{"A's bound token as Bearer", "Bearer", aBound, false, 401, func(g *tokenguard.Guard) []string {
				return append(bearerOnly(g, "invalid_token", "token requires proof of possession"), `DPoP realm="`+g.Resource()+`", `+dpopAlgs+`, resource_metadata="`+g.ResourceMetadataURL()+`"`)
			}},
			{"A's plain token as Bearer", "Bearer", a.Mint(claims(a)), false, 200, nil},
			{"B's bound token with a proof", "DPoP", bBound, true, 401, func(g *tokenguard.Guard) []string {
				return dpopFirst(g, "invalid_token", "token requires proof of possession")
			}},
			{"B's bound token as Bearer", "Bearer", bBound, false, 401, func(g *tokenguard.Guard) []string {
				return bearerOnly(g, "invalid_token", "token requires proof of possession")
			}},
			{"B's plain token as DPoP", "DPoP", b.Mint(claims(b)), true, 401, func(g *tokenguard.Guard) []string {
				return dpopFirst(g, "invalid_token", "DPoP not accepted for this token")
			}},
			{"B's plain token as Bearer", "Bearer", b.Mint(claims(b)), false, 200, nil},
			{"no token", "", "", false, 401, func(g *tokenguard.Guard) []string { return bearerOnly(g, "", "") }},
		})
	})
	t.Run("Guard allowed, one issuer required", func(t *testing.T) {
		g := newGuard(t, a, tokenguard.Config{Resource: "https://api.example/orders", Issuer: a.Issuer, DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed}, Issuers: []tokenguard.TrustedIssuer{
			{Issuer: a.Issuer, DPoP: tokenguard.DPoPRequired},
			{Issuer: b.Issuer},
		}})
		check(t, g, []row{
			{"A's plain token as Bearer", "Bearer", a.Mint(claims(a)), false, 401, func(g *tokenguard.Guard) []string {
				return dpopOnly(g, "invalid_token", "DPoP proof required")
			}},
			{"A's bound token with its proof", "DPoP", a.Mint(key.Bind(claims(a))), true, 200, nil},
			{"B's plain token as Bearer", "Bearer", b.Mint(claims(b)), false, 200, nil},
			{"B's bound token with its proof", "DPoP", b.Mint(key.Bind(claims(b))), true, 200, nil},
		})
	})
	t.Run("bad modes", func(t *testing.T) {
		_, err := tokenguard.New(context.Background(), tokenguard.Config{Resource: "https://api.example/orders", Issuer: a.Issuer, InsecureAllowHTTP: true, Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, DPoP: 9}}})
		if err == nil || !strings.Contains(err.Error(), "DPoP mode 9 is not a mode") {
			t.Errorf("mode 9: %v", err)
		}
		_, err = tokenguard.New(context.Background(), tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", DPoP: tokenguard.DPoPAllowed}}, InsecureAllowHTTP: true})
		if err == nil || !strings.Contains(err.Error(), "needs Origin") {
			t.Errorf("no origin: %v", err)
		}
	})
}

// Challenges says what WriteError sends, for the scheme the request
// used: DPoP first for a DPoP request, Bearer first otherwise.
func TestChallengesFollowTheRequestsScheme(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer, DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed}})
	key := oauthtest.NewDPoPKey("ES256")
	expired := as.Mint(key.Bind(oauthtest.Claims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}))
	for _, scheme := range []string{"DPoP", "Bearer"} {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", scheme+" "+expired)
		_, err := g.Authenticate(r)
		w := httptest.NewRecorder()
		g.WriteError(w, r, err)
		got, want := g.Challenges(r, err), w.Header().Values("WWW-Authenticate")
		if len(want) != 2 || strings.Join(got, "\n") != strings.Join(want, "\n") || !strings.HasPrefix(got[0], scheme+" ") || !strings.Contains(got[0], `error="invalid_token"`) {
			t.Errorf("%s: Challenges %q, WriteError %q", scheme, got, want)
		}
	}
	if got := g.Challenges(nil, &tokenguard.Error{Status: 503}); got != nil {
		t.Errorf("503: %q", got)
	}
}

// Refuse gives exactly the header fields WriteError sends, and logs the
// refusal as WriteError does.
func TestRefuseIsWriteErrorsHeader(t *testing.T) {
	as := shared(t)
	logs := &logBuffer{}
	g := newGuard(t, as, tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer, Logger: logs.logger(), DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, NonceKey: nonceKey}})
	key := oauthtest.NewDPoPKey("ES256")
	bound := as.Mint(key.Bind(nil))
	url := strings.TrimSuffix(as.Resource(), "/api") + "/orders"
	for _, c := range []struct {
		what string
		auth string
		err  error
	}{
		{"use_dpop_nonce", "DPoP " + bound, nil},
		{"expired, Bearer", "Bearer " + as.Mint(oauthtest.Claims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}), nil},
		{"503", "Bearer x", &tokenguard.Error{Status: 503, RetryAfter: 1500 * time.Millisecond, Reason: tokenguard.ReasonUpstreamUnavailable}},
	} {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", c.auth)
		r.Header.Set("DPoP", key.Proof("GET", url, bound))
		err := c.err
		if err == nil {
			_, err = g.Authenticate(r)
		}
		w := httptest.NewRecorder()
		g.WriteError(w, r, err)
		before := strings.Count(logs.String(), "request rejected")
		e, h := g.Refuse(r, err)
		// (A 503 is a warning, one per cause per interval: WriteError's
		// just took this one's place.)
		if c.err == nil && strings.Count(logs.String(), "request rejected") != before+1 {
			t.Errorf("%s: Refuse did not log", c.what)
		}
		want := w.Header().Clone()
		want.Del("Content-Type")
		if fmt.Sprint(h) != fmt.Sprint(want) || e.Status != w.Code {
			t.Errorf("%s: Refuse %d %v\nWriteError %d %v", c.what, e.Status, h, w.Code, want)
		}
	}
}

// Two replicas sharing a fleet store: a proof one accepted is refused by
// the other.
func TestDPoPReplayAcrossReplicas(t *testing.T) {
	store := newMemStore()
	as, gs := fleetSetup(t, 2, store, tokenguard.FleetConfig{}, nil, func(cfg *tokenguard.Config) {
		cfg.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: "https://api.example"}
	})
	key := oauthtest.NewDPoPKey("EdDSA")
	token := as.Mint(key.Bind(nil))
	proof := key.Proof("GET", "https://api.example/orders", token)
	send := func(g *tokenguard.Guard) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", proof)
		w := httptest.NewRecorder()
		g.Handler(okHandler).ServeHTTP(w, r)
		return w
	}
	if w := send(gs[0]); w.Code != 200 {
		t.Fatalf("replica 0: %d %q", w.Code, w.Header().Values("WWW-Authenticate"))
	}
	w := send(gs[1])
	if got := w.Header().Values("WWW-Authenticate"); w.Code != 401 || len(got) != 2 || !strings.Contains(got[0], `error_description="DPoP proof replayed"`) {
		t.Fatalf("replica 1, the same proof: %d %q", w.Code, got)
	}
}
