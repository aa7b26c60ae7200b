package tokenguard_test

// Attacks on the Guard from outside: each test is one attempt to get a bad
// token accepted, to make the server fetch, hang, panic, leak or log what it
// must not, or to get a non-conforming challenge. Findings that need a design
// decision are skipped with "FINDING:"; run them with
// TOKENGUARD_FINDINGS=1 go test -run Attack to see them fail.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// finding skips a test that documents an open finding, unless
// TOKENGUARD_FINDINGS is set.
func finding(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("TOKENGUARD_FINDINGS") == "" {
		t.Skip("FINDING: " + what)
	}
}

// authError runs Authenticate on a request carrying authorization and
// returns its *Error (nil when the request was accepted).
func authError(t *testing.T, g *tokenguard.Guard, authorization string) *tokenguard.Error {
	t.Helper()
	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Authorization", authorization)
	_, err := g.Authenticate(r)
	if err == nil {
		return nil
	}
	var e *tokenguard.Error
	if !errors.As(err, &e) {
		t.Fatalf("Authenticate returned %T %v, not an *Error", err, err)
	}
	return e
}

// settle waits for the goroutine count to come back to before.
func settle(t *testing.T, before int) {
	t.Helper()
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines left, %d before\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// --- Fail-open through ValidateClaims -------------------------------------

// A ValidateClaims that returns a typed nil *Error (the classic Go slip:
// `var e *tokenguard.Error; ...; return e`) is a non-nil error: the token
// must be rejected. It was accepted, reaching the handler with no Principal.
// A *Error with no status must not crash the handler either.
func TestAttackValidateClaimsTypedNilFailsClosed(t *testing.T) {
	as := shared(t)
	for _, tc := range []struct {
		name   string
		err    error
		status int
		desc   string
	}{
		{"typed nil *Error", (*tokenguard.Error)(nil), 401, "token rejected by policy"},
		{"*Error without a status", &tokenguard.Error{Description: "tenant suspended"}, 401, "token rejected by policy"},
		{"*Error with status 200", &tokenguard.Error{Status: 200, Code: "invalid_token", Description: "x"}, 401, "token rejected by policy"},
		{"wrapped typed nil", fmt.Errorf("policy: %w", (*tokenguard.Error)(nil)), 401, "token rejected by policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGuard(t, as, tokenguard.Config{ValidateClaims: func(context.Context, *tokenguard.Principal) error { return tc.err }})
			var rc reached
			w := call(g.Handler(rc.handler()), "Bearer "+as.Mint(nil))
			if w.Code != tc.status || rc.called {
				t.Fatalf("status %d, reached %v (principal %v), want %d and not reached", w.Code, rc.called, rc.principal, tc.status)
			}
			if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", tc.desc); got != want {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, want)
			}
			// RequireScopes in front of nothing must not panic on it either.
			rc = reached{}
			w = call(g.RequireScopes()(rc.handler()), "Bearer "+as.Mint(nil))
			if w.Code != tc.status || rc.called {
				t.Errorf("RequireScopes: status %d, reached %v", w.Code, rc.called)
			}
		})
	}
}

// WriteError, called by adapters with whatever they hold, must answer and
// not panic on a typed nil or status-less *Error.
func TestAttackWriteErrorOddErrors(t *testing.T) {
	g := newGuard(t, shared(t), tokenguard.Config{})
	for _, err := range []error{(*tokenguard.Error)(nil), &tokenguard.Error{}, &tokenguard.Error{Status: 42}} {
		w := httptest.NewRecorder()
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("WriteError(%#v) panicked: %v", err, r)
				}
			}()
			g.WriteError(w, httptest.NewRequest("GET", "/", nil), err)
		}()
		if w.Code != http.StatusInternalServerError || w.Header().Get("WWW-Authenticate") != "" {
			t.Errorf("WriteError(%#v): %d %q, want 500 without a challenge", err, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}

// --- Scopes -----------------------------------------------------------------

// RFC 6749 §3.3: scope-tokens are separated by SP (%x20) only. Splitting on
// any Unicode space let a single scope containing U+00A0 or U+0085 (which
// an AS validating "printable" names may let through in a dynamic scope
// such as "repo:<name>") grant a second, privileged scope.
func TestAttackScopeSplitOnlyOnSpace(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	for _, scope := range []string{"repo:x\u00a0admin", "repo:x\u0085admin", "repo:x\u3000admin", "repo:x\tadmin", "repo:x\nadmin"} {
		var rc reached
		w := call(g.RequireScopes("admin")(rc.handler()), "Bearer "+as.Mint(oauthtest.Claims{"scope": scope}))
		if w.Code != http.StatusForbidden || rc.called {
			t.Errorf("scope %q: status %d, reached %v; want 403", scope, w.Code, rc.called)
			continue
		}
		want := `Bearer realm="` + g.Resource() + `", error="insufficient_scope", error_description="token lacks a required scope", scope="admin", resource_metadata="` + g.ResourceMetadataURL() + `"`
		if got := w.Header().Get("WWW-Authenticate"); got != want {
			t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, want)
		}
	}
	// Plain spaces, repeated, still separate.
	var rc reached
	if w := call(g.RequireScopes("admin")(rc.handler()), "Bearer "+as.Mint(oauthtest.Claims{"scope": " read  admin "})); w.Code != 200 {
		t.Errorf("scope with repeated spaces: %d", w.Code)
	}
}

// --- Keys -------------------------------------------------------------------

// oddModulus returns a random odd number of exactly bits bits.
func oddModulus(bits int) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits-1)))
	if err != nil {
		panic(err)
	}
	n.SetBit(n, bits-1, 1)
	n.SetBit(n, 0, 1)
	return n
}

// A JWKS key with a huge RSA modulus (the 1 MiB cap allows ~6 million bits)
// made every token naming it, or naming no kid at all, cost a modular
// exponentiation of that size: ~25 ms at 64 Ki bits, ~5 s at 1 Mi bits of
// CPU per request, whatever the signature. crypto/tls caps RSA keys at 8192
// bits for the same reason (CVE-2023-29409). Such keys are skipped now.
func TestAttackHugeRSAModulusSkipped(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	b := base64.RawURLEncoding.EncodeToString
	as.PublishExtraKey(map[string]any{"kty": "RSA", "alg": "RS256", "n": b(oddModulus(1 << 17).Bytes()), "e": "AQAB"})
	as.PublishExtraKey(map[string]any{"kty": "RSA", "kid": "huge", "n": b(oddModulus(8193).Bytes()), "e": "AQAB"})
	g := newGuard(t, as, tokenguard.Config{UnknownKeyCooldown: time.Hour})
	claims := map[string]any{"iss": as.Issuer, "aud": as.Resource(), "exp": time.Now().Add(time.Hour).Unix()}
	sig := make([]byte, 256)
	for _, tc := range []struct {
		name   string
		header map[string]any
	}{
		{"no kid", map[string]any{"alg": "RS256"}},
		{"kid of the 8193-bit key", map[string]any{"alg": "RS256", "kid": "huge"}},
	} {
		tok := b64(tc.header) + "." + b64(claims) + "." + b(sig)
		start := time.Now()
		w := call(g.Handler(http.NotFoundHandler()), "Bearer "+tok)
		elapsed := time.Since(start)
		if w.Code != 401 {
			t.Fatalf("%s: status %d", tc.name, w.Code)
		}
		if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "unknown signing key"); got != want {
			t.Errorf("%s (took %s): WWW-Authenticate\n got %s\nwant %s", tc.name, elapsed, got, want)
		}
	}
	// The ES256 key beside them still works.
	if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+as.Mint(nil)); w.Code != 404 {
		t.Errorf("valid ES256 token: %d", w.Code)
	}
}

// pkcs1v15SHA256 is the RSASSA-PKCS1-v1_5 encoded message for msg in k bytes.
func pkcs1v15SHA256(msg []byte, k int) []byte {
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	h := sha256.Sum256(msg)
	t := append(prefix, h[:]...)
	em := make([]byte, k)
	em[1] = 1
	for i := 2; i < k-len(t)-1; i++ {
		em[i] = 0xff
	}
	copy(em[k-len(t):], t)
	return em
}

// Keys a compromised or sloppy JWKS may carry: with e=1 the "signature" is
// the encoded message itself, so anyone could sign; an EC point off the
// curve invites invalid-curve attacks. Both must be unusable.
func TestAttackDegenerateJWKSKeys(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	b := base64.RawURLEncoding.EncodeToString
	n := oddModulus(2048)
	as.PublishExtraKey(map[string]any{"kty": "RSA", "kid": "e1", "alg": "RS256", "n": b(n.Bytes()), "e": "AQ"})
	as.PublishExtraKey(map[string]any{"kty": "EC", "kid": "offcurve", "crv": "P-256", "x": b(make([]byte, 32)), "y": b(append(make([]byte, 31), 5))})
	g := newGuard(t, as, tokenguard.Config{UnknownKeyCooldown: time.Hour})
	claims := map[string]any{"iss": as.Issuer, "aud": as.Resource(), "sub": "admin", "exp": time.Now().Add(time.Hour).Unix()}

	in := b64(map[string]any{"alg": "RS256", "kid": "e1"}) + "." + b64(claims)
	e1 := in + "." + b(pkcs1v15SHA256([]byte(in), 256))
	in = b64(map[string]any{"alg": "ES256", "kid": "offcurve"}) + "." + b64(claims)
	off := in + "." + b(append(append(make([]byte, 31), 1), append(make([]byte, 31), 1)...))
	for name, tok := range map[string]string{"RSA e=1 forgery": e1, "off-curve EC key": off} {
		var rc reached
		w := call(g.Handler(rc.handler()), "Bearer "+tok)
		if w.Code != 401 || rc.called {
			t.Errorf("%s: status %d, reached %v", name, w.Code, rc.called)
		}
		if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "unknown signing key"); got != want {
			t.Errorf("%s: WWW-Authenticate\n got %s\nwant %s", name, got, want)
		}
	}
}

// jwksRedirector serves, over TLS, metadata naming a JWKS that redirects to
// target.
func jwksRedirector(t *testing.T, target string) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, srv.URL, srv.URL+"/jwks")
		case "/jwks":
			http.Redirect(w, r, target, http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// An https key set that redirects to plain http would let a network
// attacker serve the keys. It is refused, at start-up.
func TestAttackJWKSRedirectToHTTPRefused(t *testing.T) {
	as := shared(t)
	srv := jwksRedirector(t, as.JWKSURL())
	_, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuer: srv.URL, Audience: "https://api.example", HTTPClient: srv.Client(),
	})
	if err == nil || !strings.Contains(err.Error(), "redirect refused") || !strings.Contains(err.Error(), "https required") {
		t.Fatalf("New = %v, want a refused redirect", err)
	}
	// The same redirect to https is followed (RFC 8414 does not forbid it).
	srv2 := jwksRedirector(t, srv.URL+"/elsewhere")
	_, err = tokenguard.New(context.Background(), tokenguard.Config{
		Issuer: srv2.URL, Audience: "https://api.example", HTTPClient: srv.Client(),
	})
	if err == nil || strings.Contains(err.Error(), "redirect refused") {
		t.Errorf("https redirect: %v, want it followed (then 404)", err)
	}
}

// Documented behaviour: jwks_uri may be on another host than the issuer
// (RFC 8414 and OpenID discovery do not restrict it; the metadata fetched
// over the issuer's own URL is the root of trust, and the JWKS URL must
// still pass the https rule). Keys come only from that URL.
func TestAttackJWKSOnAnotherHostIsAllowed(t *testing.T) {
	keys := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	var issuer string
	meta := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, issuer, keys.JWKSURL())
	}))
	defer meta.Close()
	issuer = meta.URL
	g := newGuard(t, keys, tokenguard.Config{Issuer: issuer, Audience: "https://api.example"})
	tok := keys.Mint(oauthtest.Claims{"iss": issuer, "aud": "https://api.example"})
	if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+tok); w.Code != 404 {
		t.Errorf("token by the key of a JWKS on another host: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// The keys' own issuer is not trusted because its JWKS is.
	if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+keys.Mint(oauthtest.Claims{"aud": "https://api.example"})); w.Code != 401 {
		t.Errorf("token naming the JWKS host's issuer: %d", w.Code)
	}
}

// --- Hangs, goroutines, rate limits ----------------------------------------

// A slowloris JWKS while 500 requests with unknown kids arrive: one fetch,
// every request answered 503 within FetchTimeout (or its own deadline),
// nothing left running afterwards.
func TestAttackSlowJWKSWithUnknownKidFlood(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(), InsecureAllowHTTP: true,
		FetchTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Handler(http.NotFoundHandler())
	as.ResetCounts()
	as.SetFault("jwks", &oauthtest.Fault{Delay: 10 * time.Second})
	toks := make([]string, 500)
	for i := range toks {
		toks[i] = as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": fmt.Sprintf("k%d", i)}})
	}
	start := time.Now()
	var wg sync.WaitGroup
	var bad atomic.Int64
	for i, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			if i%2 == 1 { // half of them with a short deadline of their own
				ctx, cancel := context.WithTimeout(r.Context(), 50*time.Millisecond)
				defer cancel()
				r = r.WithContext(ctx)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 503 || w.Header().Get("Retry-After") != "5" || w.Header().Get("WWW-Authenticate") != "" {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("500 requests took %s with a 300ms fetch timeout", d)
	}
	if n := bad.Load(); n != 0 {
		t.Errorf("%d requests not answered 503 + Retry-After: 5", n)
	}
	if n := as.Requests("jwks"); n != 1 {
		t.Errorf("%d JWKS fetches, want 1", n)
	}
	as.SetFault("jwks", nil)
	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(time.Second):
		t.Fatal("Close hangs")
	}
	settle(t, before)
}

// Close racing requests that wait on a key refresh: no panic, no race, no
// answer other than accepted, 401 or 503, and Close returns promptly even
// with a fetch held open.
func TestAttackCloseDuringRequests(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	g := newGuard(t, as, tokenguard.Config{UnknownKeyCooldown: time.Millisecond})
	h := g.Handler(http.NotFoundHandler())
	valid := as.Mint(nil)
	// The fetch would take 30 s; Close must not wait for it. The bound on
	// Close is far below that and far above what 20 busy goroutines under
	// the race detector on 2 cores cost (a 1 s bound failed once there).
	as.SetFault("jwks", &oauthtest.Fault{Delay: 30 * time.Second})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var odd atomic.Int64
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				tok := valid
				if i%2 == 0 {
					tok = as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": fmt.Sprintf("u%d-%d", i, j)}})
				}
				switch call(h, "Bearer "+tok).Code {
				case 404, 401, 503:
				default:
					odd.Add(1)
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	var cw sync.WaitGroup
	for range 2 { // twice, concurrently
		cw.Add(1)
		go func() { defer cw.Done(); g.Close() }()
	}
	cw.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s with a fetch in flight", d)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if n := odd.Load(); n != 0 {
		t.Errorf("%d unexpected statuses", n)
	}
	// After Close a known key still verifies; an unknown one is 503, not a hang.
	if w := call(h, "Bearer "+valid); w.Code != 404 {
		t.Errorf("valid token after Close: %d", w.Code)
	}
	unknown := as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": "after-close"}})
	if w := call(h, "Bearer "+unknown); w.Code != 503 || w.Header().Get("Retry-After") != "1" {
		t.Errorf("unknown kid after Close: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

// A request whose context is already cancelled: a known key still decides
// (no waiting needed); an unknown one answers 503 at once instead of
// waiting for the fetch it started.
func TestAttackCancelledRequestContext(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	g := newGuard(t, as, tokenguard.Config{})
	as.SetFault("jwks", &oauthtest.Fault{Delay: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		tok    string
		status int
	}{
		{as.Mint(nil), 404},
		{as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": "unknown"}}), 503},
	} {
		r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tc.tok)
		w := httptest.NewRecorder()
		start := time.Now()
		g.Handler(http.NotFoundHandler()).ServeHTTP(w, r)
		if w.Code != tc.status || time.Since(start) > time.Second {
			t.Errorf("status %d after %s, want %d at once", w.Code, time.Since(start), tc.status)
		}
	}
}

// The AS answers the JWKS with 429 and Retry-After: 60. Unknown-kid
// refreshes should honour it rather than hit the AS again after every
// UnknownKeyCooldown; today the hint is parsed (fetch.StatusError) and
// dropped.
func TestAttackJWKSRetryAfterHonoured(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	g := newGuard(t, as, tokenguard.Config{UnknownKeyCooldown: 10 * time.Millisecond})
	as.ResetCounts()
	as.SetFault("jwks", &oauthtest.Fault{Status: 429, Header: http.Header{"Retry-After": {"60"}}})
	for i := range 5 {
		call(g.Handler(http.NotFoundHandler()), "Bearer "+as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": fmt.Sprint(i)}}))
		time.Sleep(20 * time.Millisecond)
	}
	if n := as.Requests("jwks"); n != 1 {
		t.Errorf("%d JWKS fetches within a Retry-After of 60s, want 1", n)
	}
}

// A resource metadata document listing 1,000 authorization servers makes New
// fetch 2,000 documents one after the other and start 1,000 background
// refresh loops, each polling its AS forever. Bounded by New's ctx only.
func TestAttackThousandAuthorizationServers(t *testing.T) {
	keys := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	var srv *httptest.Server
	var fetches atomic.Int64
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/.well-known/oauth-protected-resource" {
			as := make([]string, 1000)
			for i := range as {
				as[i] = fmt.Sprintf("%s/t%d", srv.URL, i)
			}
			json.NewEncoder(w).Encode(map[string]any{"resource": srv.URL, "authorization_servers": as})
			return
		}
		tenant, ok := strings.CutPrefix(r.URL.Path, "/.well-known/oauth-authorization-server/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q}`, srv.URL+"/"+tenant, keys.JWKSURL())
	}))
	defer srv.Close()
	g, err := tokenguard.New(context.Background(), tokenguard.Config{ResourceMetadataURL: srv.URL + "/.well-known/oauth-protected-resource", InsecureAllowHTTP: true})
	if err == nil {
		defer g.Close()
		t.Errorf("New trusted %d issuers after %d metadata fetches and %d JWKS fetches; want a refusal past a small cap",
			len(g.Issuers()), fetches.Load(), keys.Requests("jwks"))
	}
}

// --- Extraction ---------------------------------------------------------

// countingBody counts what the guard reads of a request body.
type countingBody struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
func (c *countingBody) Close() error { return nil }

// With AllowFormToken, every unauthenticated POST with a form content type
// makes the guard read and parse up to 10 MB (net/http's ParseForm default)
// into memory before anything is known about the caller: 100 concurrent
// requests hold ~1-3 GB. A token is at most MaxTokenBytes; the read should
// be bounded near that.
func TestAttackFormBodyIsBounded(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{AllowFormToken: true})
	body := &countingBody{r: io.MultiReader(strings.NewReader("access_token=x&pad="), strings.NewReader(strings.Repeat("a", 8<<20)))}
	r := httptest.NewRequest("POST", "/orders", nil)
	r.Body = body
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	g.Handler(http.NotFoundHandler()).ServeHTTP(w, r)
	if n := body.n.Load(); n > 1<<20 {
		t.Errorf("the guard read %d bytes of an unauthenticated form body", n)
	}
	if w.Code != 400 {
		t.Errorf("status %d, want 400", w.Code)
	}
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_request", "malformed form body"); got != want {
		t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, want)
	}
}

// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token. Several spaces are
// fine; a tab is not SP, so "Bearer<TAB>" is not the Bearer scheme at all.
func TestAttackAuthorizationWhitespace(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	tok := as.Mint(nil)
	for _, tc := range []struct {
		name, auth string
		status     int
		code, desc string
	}{
		{"two spaces", "Bearer  " + tok, 200, "", ""},
		{"tab instead of space", "Bearer\t" + tok, 401, "", ""},
		{"space then tab", "Bearer \t" + tok, 400, "invalid_request", "token has characters a bearer token cannot have"},
		{"trailing comma", "Bearer " + tok + ",", 400, "invalid_request", "token has characters a bearer token cannot have"},
		{"auth-param list", "Bearer " + tok + ", realm=x", 400, "invalid_request", "token has characters a bearer token cannot have"},
		{"NUL", "Bearer " + tok + "\x00", 400, "invalid_request", "token has characters a bearer token cannot have"},
	} {
		var rc reached
		w := call(g.Handler(rc.handler()), tc.auth)
		if w.Code != tc.status || rc.called != (tc.status == 200) {
			t.Errorf("%s: status %d, reached %v; want %d", tc.name, w.Code, rc.called, tc.status)
			continue
		}
		if tc.status != 200 {
			if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, tc.code, tc.desc); got != want {
				t.Errorf("%s: WWW-Authenticate\n got %s\nwant %s", tc.name, got, want)
			}
		}
	}
}

// --- Claims -------------------------------------------------------------------

// NumericDate edge cases against a fixed clock and no leeway.
func TestAttackNumericDates(t *testing.T) {
	as := shared(t)
	now := time.Unix(time.Now().Unix(), 0)
	g := newGuard(t, as, tokenguard.Config{Now: func() time.Time { return now }, Leeway: -1})
	T := now.Unix()
	for _, tc := range []struct {
		name   string
		claims oauthtest.Claims
		status int
		desc   string
	}{
		{"exp 1e308", oauthtest.Claims{"exp": 1e308}, 401, "malformed token"},
		{"exp -1", oauthtest.Claims{"exp": -1}, 401, "token expired"},
		{"exp 1.5", oauthtest.Claims{"exp": 1.5}, 401, "token expired"},
		{"exp as a string", oauthtest.Claims{"exp": fmt.Sprint(T + 3600)}, 401, "malformed token"},
		{"exp true", oauthtest.Claims{"exp": true}, 401, "malformed token"},
		{"exp null", oauthtest.Claims{"exp": json.RawMessage("null")}, 401, "token has no expiry"},
		{"exp exactly now", oauthtest.Claims{"exp": T}, 401, "token expired"},
		{"exp half a second ahead", oauthtest.Claims{"exp": float64(T) + 0.5}, 200, ""},
		{"exp 1e15 (31 million years)", oauthtest.Claims{"exp": 1e15}, 200, ""},
		{"exp just past 1e15", oauthtest.Claims{"exp": 1e15 + 1}, 401, "malformed token"},
		{"nbf exactly now", oauthtest.Claims{"nbf": T}, 200, ""},
		{"nbf one second ahead", oauthtest.Claims{"nbf": T + 1}, 401, "token not yet valid"},
		{"nbf 1e308", oauthtest.Claims{"nbf": 1e308}, 401, "malformed token"},
		{"nbf as a string", oauthtest.Claims{"nbf": "0"}, 401, "malformed token"},
		{"iat -1e15", oauthtest.Claims{"iat": -1e15}, 200, ""},
		{"iat one second ahead", oauthtest.Claims{"iat": T + 1}, 401, "token issued in the future"},
	} {
		claims := oauthtest.Claims{"iat": nil, "exp": T + 3600}
		for k, v := range tc.claims {
			claims[k] = v
		}
		var rc reached
		w := call(g.Handler(rc.handler()), "Bearer "+as.Mint(claims))
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, w.Code, tc.status, w.Header().Get("WWW-Authenticate"))
			continue
		}
		if tc.status != 200 {
			if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", tc.desc); got != want {
				t.Errorf("%s: WWW-Authenticate\n got %s\nwant %s", tc.name, got, want)
			}
		}
	}
}

// An aud array of thousands of entries inside the token cap costs nothing
// notable, and only a signed token gets that far.
func TestAttackHugeAudienceArray(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	aud := make([]string, 2500)
	for i := range aud {
		aud[i] = "x"
	}
	without := as.MintWith(oauthtest.MintOptions{Alg: "EdDSA", Claims: oauthtest.Claims{"aud": aud}})
	with := as.MintWith(oauthtest.MintOptions{Alg: "EdDSA", Claims: oauthtest.Claims{"aud": append(aud, as.Resource())}})
	if len(with) > 16<<10 {
		t.Fatalf("token of %d bytes is over the cap", len(with))
	}
	start := time.Now()
	if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+without); w.Code != 401 ||
		w.Header().Get("WWW-Authenticate") != wantChallenge(g, "invalid_token", "token not meant for this resource") {
		t.Errorf("aud lacking the resource: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+with); w.Code != 404 {
		t.Errorf("aud containing the resource last: %d", w.Code)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("two tokens with 2,500 audiences took %s", d)
	}
	// The log line of the rejection stays short.
	e := authError(t, g, "Bearer "+without)
	if e == nil || len(e.Error()) > 512 {
		t.Errorf("error of %d bytes", len(e.Error()))
	}
}

// Attacker text (kid, iss, typ, crit) reaches the operator's log through the
// error cause. It must be bounded and printable: a 12 KiB kid made a 12 KiB
// log line per request (at Warn while the JWKS is down), and bidi or C1
// control characters went through unchanged.
func TestAttackLoggedCauseIsBoundedAndPrintable(t *testing.T) {
	as := shared(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	g := newGuard(t, as, tokenguard.Config{Logger: logger})
	evil := "\u202e\u0085\u2028\x1b[31m\r\n\"\\"
	tokens := map[string]string{
		"huge kid":       as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": strings.Repeat("K", 8<<10)}}),
		"kid with evil":  as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": "k" + evil}}),
		"iss with evil":  as.Mint(oauthtest.Claims{"iss": "https://x" + evil + strings.Repeat("I", 8<<10)}),
		"typ with evil":  as.MintWith(oauthtest.MintOptions{Header: map[string]any{"typ": evil}}),
		"crit with evil": as.MintWith(oauthtest.MintOptions{Header: map[string]any{"crit": []string{evil + strings.Repeat("C", 8<<10)}}}),
	}
	for name, tok := range tokens {
		e := authError(t, g, "Bearer "+tok)
		if e == nil || e.Status != 401 {
			t.Fatalf("%s: %v", name, e)
		}
		msg := e.Error()
		if len(msg) > 512 {
			t.Errorf("%s: cause of %d bytes", name, len(msg))
		}
		for _, c := range []string{"\u202e", "\u0085", "\u2028", "\x1b", "\r", "\n"} {
			if strings.Contains(msg, c) {
				t.Errorf("%s: cause contains %q: %q", name, c, msg[:min(len(msg), 200)])
			}
		}
		call(g.Handler(http.NotFoundHandler()), "Bearer "+tok)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if len(line) > 1024 {
			t.Errorf("log line of %d bytes: %.200s", len(line), line)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// --- Challenges ----------------------------------------------------------------

// A configured resource_metadata URL or realm with quotes and CR/LF cannot
// break out of the challenge or add a header.
func TestAttackChallengeFromHostileConfig(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{
		Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: as.Resource(),
		Realm:               "r\", error=\"none",
		ResourceMetadataURL: "https://api.example/x\", scope=\"admin\r\nSet-Cookie: a=b",
	})
	w := call(g.Handler(http.NotFoundHandler()), "")
	want := `Bearer realm="r\", error=\"none", resource_metadata="https://api.example/x\", scope=\"adminSet-Cookie: a=b"`
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != want {
		t.Errorf("%d\n got %s\nwant %s", w.Code, w.Header().Get("WWW-Authenticate"), want)
	}
	if len(w.Header()["Set-Cookie"]) != 0 || len(w.Header()["Www-Authenticate"]) != 1 {
		t.Errorf("headers %v", w.Header())
	}
}

// RFC 6750 §3: error_description and scope values MUST NOT contain '"' or
// '\' at all (%x20-21 / %x23-5B / %x5D-7E; scope-tokens are %x21 / %x23-5B
// / %x5D-7E). Escaping them gives a valid quoted-string whose value still
// breaks the RFC 6750 grammar. The README documents escaping, and
// TestChallengeEscaping expects it, so this is for the lead to decide.
func TestAttackChallengeCharsetRFC6750(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{ValidateClaims: func(context.Context, *tokenguard.Principal) error {
		return &tokenguard.Error{Status: 403, Code: tokenguard.CodeInsufficientScope, Description: `need "admin" \ root`, Scopes: []string{`a"b`, `c\d`}}
	}})
	w := call(g.Handler(http.NotFoundHandler()), "Bearer "+as.Mint(nil))
	want := `Bearer realm="` + g.Resource() + `", error="insufficient_scope", error_description="need admin  root", scope="ab cd", resource_metadata="` + g.ResourceMetadataURL() + `"`
	if w.Code != 403 || w.Header().Get("WWW-Authenticate") != want {
		t.Errorf("%d\n got %s\nwant %s", w.Code, w.Header().Get("WWW-Authenticate"), want)
	}
}

// --- Composition ---------------------------------------------------------------

// RequireScopes of guard B trusts any Principal already in the context,
// including one guard A (another issuer, another audience) put there, so
// A's token carrying scope "admin" passes B's scope check.
func TestAttackRequireScopesTrustsAnotherGuardsPrincipal(t *testing.T) {
	asA := shared(t)
	asB := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	gA := newGuard(t, asA, tokenguard.Config{})
	gB := newGuard(t, asB, tokenguard.Config{})
	var rc reached
	h := gA.Handler(gB.RequireScopes("admin")(rc.handler()))
	w := call(h, "Bearer "+asA.Mint(oauthtest.Claims{"scope": "admin"}))
	if w.Code != 401 || rc.called {
		t.Errorf("A's token through B's RequireScopes: %d, reached %v", w.Code, rc.called)
	}
}

// With InsecureSkipAudienceCheck and the default typ policy, an OpenID
// Connect ID token of a trusted issuer (typ JWT, aud = a client id, nonce)
// is accepted as an access token: the DESIGN's "never an ID token by
// accident" holds only through the audience check.
func TestAttackIDTokenWithoutAudienceCheck(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{InsecureSkipAudienceCheck: true})
	idToken := as.MintWith(oauthtest.MintOptions{
		Header: map[string]any{"typ": "JWT"},
		Claims: oauthtest.Claims{"aud": "some-spa-client", "nonce": "n-0S6_WzA2Mj", "auth_time": time.Now().Unix(), "client_id": nil},
	})
	var rc reached
	if w := call(g.Handler(rc.handler()), "Bearer "+idToken); w.Code != 401 || rc.called {
		t.Errorf("ID token: %d, reached %v", w.Code, rc.called)
	}
}

// RFC 6750 §3: the Bearer scheme "MUST be followed by one or more auth-param
// values". A guard configured with Issuer, JWKSURL and Audience has no
// realm and no metadata URL, and answered a request without a token with a
// bare "Bearer".
func TestAttackChallengeHasAnAuthParam(t *testing.T) {
	as := shared(t)
	for name, cfg := range map[string]tokenguard.Config{
		"issuer, JWKS and audience": {Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: as.Resource()},
		"no audience check":         {Issuer: as.Issuer, JWKSURL: as.JWKSURL(), InsecureSkipAudienceCheck: true},
	} {
		g := newGuard(t, as, cfg)
		for _, tc := range []struct {
			auth, want string
			status     int
		}{
			{"", `Bearer realm=""`, 401},
			{"Basic dXNlcjpwYXNz", `Bearer realm=""`, 401},
			{"Bearer x", `Bearer error="invalid_token", error_description="token is not a JWT"`, 401},
		} {
			w := call(g.Handler(http.NotFoundHandler()), tc.auth)
			if w.Code != tc.status || w.Header().Get("WWW-Authenticate") != tc.want {
				t.Errorf("%s, %q: %d %q, want %d %q", name, tc.auth, w.Code, w.Header().Get("WWW-Authenticate"), tc.status, tc.want)
			}
		}
	}
}
