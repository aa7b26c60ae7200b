package tokenguard_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Review 3, from the attacker's side: DPoP nonces and per-issuer modes,
// the proof-key cache, events, and what the new code paths keep alive.

// dpopRequiredChallenge is the exact challenge of a Bearer token where
// DPoP is required, for a Guard without a resource identifier.
const dpopRequiredChallenge = `DPoP ` + dpopAlgs + `, error="invalid_token", error_description="DPoP proof required"`

// FINDING 1. The DPoP mode of a token is looked up by its issuer's name
// (dpopState.modeFor), in a map that holds only the exact issuers whose
// mode differs from the Guard's and a list that holds only the patterns
// whose mode differs. An exact issuer that keeps the Guard's mode, but
// that a pattern with another mode also matches, gets the pattern's mode;
// so does a tenant whose first matching pattern (the one specFor gives its
// whole policy) keeps the Guard's mode while a later one differs. With the
// Guard at DPoPRequired and the pattern at DPoPAllowed, a stolen plain
// bearer token of the strict issuer works.
func TestAttackReview3DPoPModeOfOverlappingIssuers(t *testing.T) {
	const aud = "https://api.example"
	ts := newRecordingAS(t, true)
	bearerGets := func(t *testing.T, g *tokenguard.Guard, token string) *httptest.ResponseRecorder {
		t.Helper()
		return call(g.Handler(okHandler), "Bearer "+token)
	}
	t.Run("exact issuer at the Guard's mode, a pattern allowed", func(t *testing.T) {
		g := newGuardAt(t, tokenguard.Config{
			DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPRequired, Origin: aud},
			Issuers: []tokenguard.TrustedIssuer{
				{Issuer: ts.issuer("bank"), Audience: aud}, // Config.DPoP.Mode: required
				{Issuer: ts.issuer("*"), Audience: aud, DPoP: tokenguard.DPoPAllowed},
			},
		})
		// The pattern's own tenants do take Bearer tokens: the set-up is right.
		if w := bearerGets(t, g, ts.mint("shop", oauthtest.Claims{"aud": aud})); w.Code != 200 {
			t.Fatalf("a tenant of the allowed pattern as Bearer: %d %q", w.Code, w.Header().Values("WWW-Authenticate"))
		}
		w := bearerGets(t, g, ts.mint("bank", oauthtest.Claims{"aud": aud}))
		if w.Code != 401 || strings.Join(w.Header().Values("WWW-Authenticate"), "\n") != dpopRequiredChallenge {
			t.Fatalf("a plain token of the DPoP-required exact issuer as Bearer: %d %q\nwant 401 %q", w.Code, w.Header().Values("WWW-Authenticate"), dpopRequiredChallenge)
		}
	})
	t.Run("first pattern at the Guard's mode, a later one allowed", func(t *testing.T) {
		g := newGuardAt(t, tokenguard.Config{
			DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPRequired, Origin: aud},
			Issuers: []tokenguard.TrustedIssuer{
				{Issuer: ts.issuer("*"), Audience: aud},                                   // every tenant: required
				{Issuer: ts.URL + "/*/acme", Audience: aud, DPoP: tokenguard.DPoPAllowed}, // also matches /t/acme
			},
		})
		w := bearerGets(t, g, ts.mint("acme", oauthtest.Claims{"aud": aud}))
		if w.Code != 401 || strings.Join(w.Header().Values("WWW-Authenticate"), "\n") != dpopRequiredChallenge {
			t.Fatalf("a plain token of a tenant whose first pattern requires DPoP, as Bearer: %d %q\nwant 401 %q", w.Code, w.Header().Values("WWW-Authenticate"), dpopRequiredChallenge)
		}
	})
}

// FINDING 2. Events.Upstream for the discovery of a pattern tenant is
// given the unverified iss of the token that named it: anyone, without a
// valid token, puts a string of their choice and of any length (up to
// MaxTokenBytes) in UpstreamCall.Issuer and URL, which the otel module
// records as a span attribute (and, without SkipIssuerAttribute, a metric
// series per made-up tenant). Events' contract is that no claim value
// reaches it.
func TestAttackReview3PatternDiscoveryEventCarriesClientIss(t *testing.T) {
	nothing := httptestHandler(t, http.NotFound) // no tenant exists there
	var mu sync.Mutex
	var calls []tokenguard.UpstreamCall
	g := newGuardAt(t, tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{{Issuer: nothing.URL + "/t/*", Audience: "https://api.example"}},
		Events: tokenguard.Events{Upstream: func(ctx context.Context, c tokenguard.UpstreamCall) (context.Context, func(tokenguard.UpstreamResult)) {
			mu.Lock()
			calls = append(calls, c)
			mu.Unlock()
			return ctx, nil
		}},
	})
	label := "chosen-by-the-attacker-" + strings.Repeat("A", 4000)
	token := shared(t).Mint(oauthtest.Claims{"iss": nothing.URL + "/t/" + label, "aud": "https://api.example"})
	w := call(g.Handler(okHandler), "Bearer "+token)
	if want := `Bearer error="invalid_token", error_description="untrusted issuer"`; w.Code != 401 || w.Header().Get("WWW-Authenticate") != want {
		t.Errorf("made-up tenant: %d %q, want 401 %q", w.Code, w.Header().Get("WWW-Authenticate"), want)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range calls {
		if strings.Contains(c.Issuer, label) || strings.Contains(c.URL, label) || len(c.Issuer) > 256 || len(c.URL) > 512 {
			t.Fatalf("Events.Upstream got %s call (trigger %q) with an Issuer of %d bytes and a URL of %d bytes, holding the token's unverified iss", c.Kind, c.Trigger, len(c.Issuer), len(c.URL))
		}
	}
}

// FINDING 3a. jwks.Set.startFlight calls Options.Observe (the Guard's
// Events.Upstream) with s.mu held and after s.inflight is set: a callback
// that panics once (net/http recovers the request) leaves a flight that
// never completes. From then on every unknown-kid Lookup waits on it
// until its request gives up (503), the scheduled refresh joins it too,
// and the key set never changes again: a rotation is never picked up,
// and after MaxKeyStaleness every token gets 503.
func TestAttackReview3PanickingUpstreamWedgesKeySet(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	var armed atomic.Bool
	g := newGuard(t, as, tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer, UnknownKeyCooldown: 20 * time.Millisecond,
		Events: tokenguard.Events{Upstream: func(ctx context.Context, c tokenguard.UpstreamCall) (context.Context, func(tokenguard.UpstreamResult)) {
			if c.Kind == tokenguard.UpstreamKeys && c.Trigger == "unknown_kid" && armed.CompareAndSwap(true, false) {
				panic("a bug in the metrics exporter")
			}
			return ctx, nil
		}}})
	h := g.Handler(okHandler)
	serve := func(token string, wait time.Duration) (code int, challenge string) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		defer func() {
			if recover() != nil { // as net/http's server does
				code = -1
			}
		}()
		r := httptest.NewRequest("GET", "/orders", nil).WithContext(ctx)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Header().Get("WWW-Authenticate")
	}
	armed.Store(true)
	// One request with an unknown kid meets the panic: it fails (-1, the
	// panic reached the server) or is refused (401, the Guard contained it).
	if code, _ := serve(as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": "no-such-kid"}}), time.Second); armed.Load() || code != -1 && code != 401 {
		t.Fatalf("unknown kid: %d, callback armed %v", code, armed.Load())
	}
	// The callback panics no more; the server rotates its key.
	time.Sleep(50 * time.Millisecond) // past UnknownKeyCooldown
	kid := as.RotateKey("ES256")
	code, ch := serve(as.MintWith(oauthtest.MintOptions{KeyID: kid}), 2*time.Second)
	if code != 200 {
		t.Fatalf("a valid token of the new key, after one panicking callback: %d %q, want 200", code, ch)
	}
}

// FINDING 3b. The same callback panicking in an introspection (or in a
// pattern discovery, or in a key fetch's done) runs in a goroutine of its
// own (singleflight.DoChan, the jwks flight): nothing can recover it, and
// the whole process dies, every connection with it.
func TestAttackReview3PanickingUpstreamKillsProcess(t *testing.T) {
	if os.Getenv("TOKENGUARD_REVIEW3_CHILD") == "1" {
		_, g := opaqueSetup(t, oauthtest.Options{OpaqueTokens: true}, tokenguard.IntrospectionConfig{}, tokenguard.Config{
			Events: tokenguard.Events{Upstream: func(ctx context.Context, c tokenguard.UpstreamCall) (context.Context, func(tokenguard.UpstreamResult)) {
				if c.Kind == tokenguard.UpstreamIntrospection {
					panic("a bug in the metrics exporter")
				}
				return ctx, nil
			}},
		})
		func() {
			defer func() { _ = recover() }() // as net/http's server does
			call(g.Handler(okHandler), "Bearer some-opaque-token")
		}()
		time.Sleep(200 * time.Millisecond) // time for a stray goroutine to panic
		os.Stdout.WriteString("SURVIVED\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAttackReview3PanickingUpstreamKillsProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "TOKENGUARD_REVIEW3_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SURVIVED") {
		first, _, _ := strings.Cut(string(out), "\n\n")
		t.Fatalf("one panicking Events.Upstream call during an introspection killed the process (%v):\n%s", err, first)
	}
}

type review3Key struct{}

// FINDING 4. With Events.Upstream set, jwks.Set.startFlight registers
// context.AfterFunc(s.ctx, stop) for each fetch and drops the function
// that would unregister it: every fetch leaves an entry in the Set's
// context, which holds the context of the request that caused it (its
// values: spans, loggers, whatever the application put there) until the
// Guard closes. An unauthenticated client causes one per
// UnknownKeyCooldown per issuer, for ever.
func TestAttackReview3KeyFetchKeepsRequestContext(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	g := newGuard(t, as, tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer,
		Events: tokenguard.Events{Upstream: func(ctx context.Context, _ tokenguard.UpstreamCall) (context.Context, func(tokenguard.UpstreamResult)) {
			return ctx, nil
		}}})
	collected := make(chan struct{})
	func() {
		held := new([1 << 16]byte) // a request-scoped value
		runtime.AddCleanup(held, func(ch chan struct{}) { close(ch) }, collected)
		r := httptest.NewRequest("GET", "/orders", nil).WithContext(context.WithValue(context.Background(), review3Key{}, held))
		r.Header.Set("Authorization", "Bearer "+as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": "no-such-kid"}}))
		w := httptest.NewRecorder()
		g.Handler(okHandler).ServeHTTP(w, r)
		if w.Code != 401 {
			t.Fatalf("unknown kid: %d", w.Code)
		}
	}()
	gone := func() bool {
		for range 50 {
			runtime.GC()
			select {
			case <-collected:
				return true
			case <-time.After(20 * time.Millisecond):
			}
		}
		return false
	}
	if gone() {
		return
	}
	g.Close()
	t.Fatalf("the request's context is still held after its request ended and its key fetch completed (released by Close: %v)", gone())
}

// Holds: the proof-key cache returns a key only for the very bytes and
// alg it parsed. A jwk whose public members equal a cached key's (same
// thumbprint, so the token's cnf.jkt matches) but that carries a private
// member, is not canonically encoded, or comes under another alg, is
// still refused with invalid_dpop_proof.
func TestAttackReview3KeyCacheDoesNotWidenTheJWKChecks(t *testing.T) {
	as := shared(t)
	g, url, _ := dpopSetup(t)
	key := oauthtest.NewDPoPKey("ES256")
	token := as.Mint(key.Bind(oauthtest.Claims{"sub": "alice"}))
	pub := key.Public().(*ecdsa.PublicKey)
	raw, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	x, y := b64(raw[1:33]), b64(raw[33:65])
	jwk := func(extra map[string]any) map[string]any {
		m := map[string]any{"kty": "EC", "crv": "P-256", "x": x, "y": y}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	h := g.Handler(okHandler)
	send := func(o oauthtest.ProofOptions) *httptest.ResponseRecorder {
		o.Method, o.URL, o.Token = "GET", url, token
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", key.ProofWith(o))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	// Cached: the canonical jwk, sent as oauthtest and as this test spell it.
	for i := range 2 {
		if w := send(oauthtest.ProofOptions{}); w.Code != 200 {
			t.Fatalf("proof %d: %d %q", i, w.Code, w.Header().Values("WWW-Authenticate"))
		}
	}
	if w := send(oauthtest.ProofOptions{Header: map[string]any{"jwk": jwk(nil)}}); w.Code != 200 {
		t.Fatalf("the same key spelt by hand: %d %q", w.Code, w.Header().Values("WWW-Authenticate"))
	}
	want := []string{
		`DPoP realm="` + g.Resource() + `", ` + dpopAlgs + `, error="invalid_dpop_proof", error_description="invalid DPoP proof", resource_metadata="` + g.ResourceMetadataURL() + `"`,
		`Bearer realm="` + g.Resource() + `", resource_metadata="` + g.ResourceMetadataURL() + `"`,
	}
	for _, c := range []struct {
		what string
		o    oauthtest.ProofOptions
	}{
		{"a private member d", oauthtest.ProofOptions{Header: map[string]any{"jwk": jwk(map[string]any{"d": x})}}},
		{"x with base64 padding", oauthtest.ProofOptions{Header: map[string]any{"jwk": jwk(map[string]any{"x": x + "="})}}},
		{"x with a leading zero byte", oauthtest.ProofOptions{Header: map[string]any{"jwk": jwk(map[string]any{"x": b64(append([]byte{0}, raw[1:33]...))})}}},
		{"the cached key under ES384", oauthtest.ProofOptions{Header: map[string]any{"alg": "ES384"}}},
		{"a jwk alg that is not the proof's", oauthtest.ProofOptions{Header: map[string]any{"jwk": jwk(map[string]any{"alg": "ES384"})}}},
	} {
		w := send(c.o)
		if w.Code != 401 || strings.Join(w.Header().Values("WWW-Authenticate"), "\n") != strings.Join(want, "\n") {
			t.Errorf("%s, after the key was cached: %d %q", c.what, w.Code, w.Header().Values("WWW-Authenticate"))
		}
	}
}

// Holds: a use_dpop_nonce refusal does not spend the proof's jti (the
// client's retry with the nonce and the same jti gets in), the retry does
// (a third send is a replay, whatever nonce it carries), and the refusal
// is not cacheable.
func TestAttackReview3NonceRefusalAndReplay(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer, DPoP: tokenguard.DPoPConfig{
		Mode: tokenguard.DPoPRequired, NonceKey: nonceKey,
	}})
	url := strings.TrimSuffix(as.Resource(), "/api") + "/orders"
	key := oauthtest.NewDPoPKey("ES256")
	token := as.Mint(key.Bind(oauthtest.Claims{"sub": "alice"}))
	send := func(nonce string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", key.ProofWith(oauthtest.ProofOptions{Method: "GET", URL: url, Token: token, Nonce: nonce, ID: "one-jti"}))
		w := httptest.NewRecorder()
		g.Handler(okHandler).ServeHTTP(w, r)
		return w
	}
	challenge := func(code, desc string) string {
		return `DPoP realm="` + g.Resource() + `", ` + dpopAlgs + `, error="` + code + `", error_description="` + desc + `", resource_metadata="` + g.ResourceMetadataURL() + `"`
	}
	w := send("")
	nonce := w.Header().Get("DPoP-Nonce")
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != challenge("use_dpop_nonce", "DPoP nonce required") || nonce == "" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("no nonce: %d %q nonce %q Cache-Control %q", w.Code, w.Header().Values("WWW-Authenticate"), nonce, w.Header().Get("Cache-Control"))
	}
	if w := send(nonce); w.Code != 200 {
		t.Fatalf("the retry with the nonce and the same jti: %d %q", w.Code, w.Header().Values("WWW-Authenticate"))
	}
	for _, n := range []string{nonce, g.DPoPNonce(), ""} {
		w := send(n)
		want := challenge("invalid_dpop_proof", "DPoP proof replayed")
		if n == "" {
			want = challenge("use_dpop_nonce", "DPoP nonce required") // nothing to spend, nothing accepted
		}
		if w.Code != 401 || w.Header().Get("WWW-Authenticate") != want {
			t.Errorf("the jti again (nonce %q): %d %q, want %q", n, w.Code, w.Header().Values("WWW-Authenticate"), want)
		}
	}
}
