package tokenguard_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Hostile and failing authorization servers (issue 12): each test shows
// what a server's fault used to do to valid tokens, and fails without the
// fix.

// logBuffer is a Debug-level slog logger writing to a buffer.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// An empty key set (or one with no usable key) is a failed refresh: a
// request with a random kid makes the guard fetch it, and valid tokens
// must keep working on the last good set, with a warning logged.
func TestAttackEmptyKeySetKeepsTheLastGoodOne(t *testing.T) {
	for name, body := range map[string]string{
		"empty":         `{"keys":[]}`,
		"only unusable": `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"},{"kty":"RSA","kid":"e","use":"enc","n":"AQAB","e":"AQAB"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			as := newAS(t, oauthtest.Options{})
			var logs logBuffer
			g := newGuard(t, as, tokenguard.Config{Logger: logs.logger(), TokenCacheSize: -1})
			h := g.Handler(http.NotFoundHandler())
			valid := as.Mint(nil)
			if w := call(h, "Bearer "+valid); w.Code != 404 {
				t.Fatalf("valid token before: %d", w.Code)
			}
			as.SetFault("jwks", &oauthtest.Fault{Status: 200, Body: body})
			random := as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": "random-kid"}})
			w := call(h, "Bearer "+random)
			if w.Code != 503 {
				t.Errorf("random kid while the server publishes an unusable set: %d %s, want 503", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			if as.Requests("jwks") != 2 {
				t.Fatalf("%d JWKS fetches, want 2 (start-up and the random kid's)", as.Requests("jwks"))
			}
			if w := call(h, "Bearer "+valid); w.Code != 404 {
				t.Errorf("valid token after the unusable refresh: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			if !strings.Contains(logs.String(), "no usable key") {
				t.Errorf("no warning logged:\n%s", logs.String())
			}
		})
	}
	// At start-up there is no last good set: New fails and says why.
	as := newAS(t, oauthtest.Options{})
	as.SetFault("jwks", &oauthtest.Fault{Status: 200, Body: `{"keys":[]}`})
	_, err := tokenguard.New(context.Background(), tokenguard.Config{ResourceMetadataURL: as.ResourceMetadataURL(), InsecureAllowHTTP: true})
	if err == nil || !strings.Contains(err.Error(), "no usable key") {
		t.Errorf("New against an empty key set: %v", err)
	}
}

// exp and nbf in introspection answers get the issuer's leeway, as a JWT's
// do. Before, an answer with nbf a second ahead (Ory Hydra sends nbf) was
// refused and cached as inactive.
func TestIntrospectionAnswersGetTheLeeway(t *testing.T) {
	guardClock := newFakeClock()
	serverClock := &fakeClock{t: guardClock.Now()}
	as, g := opaqueSetup(t, oauthtest.Options{Now: serverClock.Now}, tokenguard.IntrospectionConfig{},
		tokenguard.Config{Leeway: 5 * time.Second, Now: guardClock.Now})
	h := g.Handler(http.NotFoundHandler())

	// The server's clock is a second ahead; its nbf is its "now".
	serverClock.Advance(time.Second)
	ahead := as.MintOpaque(oauthtest.Claims{"nbf": serverClock.Now().Unix()})
	if w := call(h, "Bearer "+ahead); w.Code != 404 {
		t.Errorf("nbf 1 s ahead, leeway 5 s: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// A minute ahead is beyond the leeway.
	serverClock.Advance(time.Minute)
	far := as.MintOpaque(oauthtest.Claims{"nbf": serverClock.Now().Unix()})
	w := call(h, "Bearer "+far)
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "token not yet valid"); w.Code != 401 || got != want {
		t.Errorf("nbf a minute ahead: %d %s", w.Code, got)
	}
}

// A refresh token is not an access token, whatever its token_type says:
// Ory Hydra and fosite answer one with token_type bearer and token_use
// refresh_token.
func TestAttackRefreshTokenByTokenUse(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	for _, tc := range []struct {
		name   string
		claims oauthtest.Claims
		status int
		desc   string
	}{
		{"token_use refresh_token", oauthtest.Claims{"token_type": "bearer", "token_use": "refresh_token"}, 401, "not an access token"},
		{"token_type refresh_token", oauthtest.Claims{"token_type": "refresh_token"}, 401, "refresh token not accepted"},
		{"token_use access_token", oauthtest.Claims{"token_type": "bearer", "token_use": "access_token"}, 404, ""},
		{"neither (Authelia)", oauthtest.Claims{"token_type": nil}, 404, ""},
	} {
		w := call(h, "Bearer "+as.MintOpaque(tc.claims))
		want := ""
		if tc.status == 401 {
			want = wantChallenge(g, "invalid_token", tc.desc)
		}
		if w.Code != tc.status || w.Header().Get("WWW-Authenticate") != want {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}

// An answer whose exp is centuries away is cached (for MaxTTL), not
// recomputed into a negative TTL and asked again on every request.
func TestFarFutureExpIsCached(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	tok := as.MintOpaque(oauthtest.Claims{"exp": int64(1) << 40})
	for range 3 {
		if w := call(h, "Bearer "+tok); w.Code != 404 {
			t.Fatalf("%d %s", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	if n := as.Requests("introspect"); n != 1 {
		t.Errorf("%d introspection calls, want 1", n)
	}
}

// What is recognisably a JWS is judged locally, never introspected: an
// unsecured JWT or a JWS-shaped piece of garbage costs no upstream call,
// and an outage cannot turn it into a 503 anyone can ask for.
func TestAttackUnsecuredJWTsAreNotIntrospected(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	unsecured, err := oauthtest.SignJWT(map[string]any{"alg": "none"}, map[string]any{"iss": as.Issuer, "aud": as.Resource(), "sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()}, nil, "none")
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(s string) string { return base64URL(s) }
	as.SetFault("introspect", &oauthtest.Fault{Status: 500}) // an outage: nothing may reach it anyway
	for _, tc := range []struct{ name, token, desc string }{
		{"alg none, empty signature", unsecured, "signature algorithm not allowed"},
		{"header with a leading blank", b64(` {"alg":"RS256"}`) + "." + b64(`{"sub":"x"}`) + ".c2ln", "malformed token"},
		{"HS256 header, no payload", b64(`{"alg":"HS256"}`) + "..c2ln", "signature algorithm not allowed"},
	} {
		w := call(h, "Bearer "+tc.token)
		if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", tc.desc); w.Code != 401 || got != want {
			t.Errorf("%s: %d %s", tc.name, w.Code, got)
		}
	}
	if n := as.Requests("introspect"); n != 0 {
		t.Errorf("%d introspection calls for JWS-shaped tokens", n)
	}
}

// A 400 answer about one token is a verdict (401, cached), not an outage:
// unsupported_token_type always, and any other 400 when a probe shows the
// endpoint answers well-formed requests. When every request gets 400 (our
// request is what is wrong), it stays 503.
func TestIntrospectionBadRequestIsAVerdictOnlyWhenItIsAboutTheToken(t *testing.T) {
	ts := newRecordingAS(t, false)
	ts.setAnswer(func(_, token string) map[string]any {
		switch {
		case strings.HasPrefix(token, "unsupported"):
			return map[string]any{"_status": 400, "_body": `{"error":"unsupported_token_type"}`}
		case strings.HasPrefix(token, "refused"):
			return map[string]any{"_status": 400}
		}
		return map[string]any{"active": false}
	})
	g := newGuardAt(t, tokenguard.Config{Issuer: ts.issuer(""), Audience: "api://x",
		Introspection: tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"}})
	h := g.Handler(http.NotFoundHandler())
	for _, tok := range []string{"unsupported-structured-token", "refused-by-the-server"} {
		for i := range 2 {
			w := call(h, "Bearer "+tok)
			if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "token is not active"); w.Code != 401 || got != want {
				t.Errorf("%s, request %d: %d %s", tok, i, w.Code, got)
			}
		}
	}
	// unsupported: 1 call; refused: 1 call and 1 probe (a random token).
	if n := len(ts.requests("/introspect")); n != 3 {
		t.Errorf("%d introspection calls, want 3", n)
	}

	// Every request refused: our request is at fault; 503, never cached.
	ts.setAnswer(func(_, _ string) map[string]any { return map[string]any{"_status": 400} })
	g2 := newGuardAt(t, tokenguard.Config{Issuer: ts.issuer(""), Audience: "api://x",
		Introspection: tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"}})
	h2 := g2.Handler(http.NotFoundHandler())
	before := len(ts.requests("/introspect"))
	for i := range 3 {
		if w := call(h2, "Bearer some-token"); w.Code != 503 {
			t.Errorf("400 for every request, request %d: %d, want 503", i, w.Code)
		}
	}
	// One call for the token and one probe; the repeats are held back.
	if n := len(ts.requests("/introspect")) - before; n != 2 {
		t.Errorf("a repeated token answered 400 cost %d calls, want 2", n)
	}
	// Client-chosen 400s never open the breaker for everyone.
	for i := range 20 {
		call(h2, "Bearer garbage-"+strconv.Itoa(i))
	}
	ts.setAnswer(func(_, _ string) map[string]any { return map[string]any{"active": true, "aud": "api://x"} })
	if w := call(h2, "Bearer a-valid-token"); w.Code != 404 {
		t.Errorf("a valid token after clients sent 20 refused ones: %d %s", w.Code, w.Header().Get("Retry-After"))
	}
}

// A burst of failures in flight when the breaker opens doubles its
// backoff once, not once per call: after a short outage the endpoint is
// asked again within the first backoff.
func TestIntrospectionBreakerBurst(t *testing.T) {
	clk := newFakeClock()
	as, g := opaqueSetup(t, oauthtest.Options{Now: clk.Now}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	as.SetFault("introspect", &oauthtest.Fault{Status: 500, Delay: 50 * time.Millisecond})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); call(h, "Bearer "+as.MintOpaque(nil)) }()
	}
	wg.Wait()
	as.SetFault("introspect", nil)
	clk.Advance(1300 * time.Millisecond) // past the first backoff, 1 s ± 20 %
	if w := call(h, "Bearer "+as.MintOpaque(nil)); w.Code != 404 {
		t.Errorf("after a burst of failures and the first backoff: %d, Retry-After %s", w.Code, w.Header().Get("Retry-After"))
	}
}

// An introspection endpoint that fails without Retry-After is not called
// once per new token: after a few failures in a row the breaker opens, and
// requests get 503 with the time until the next try, without a call; once
// the endpoint recovers, one probe closes it again.
func TestIntrospectionBreaker(t *testing.T) {
	clk := newFakeClock()
	as, g := opaqueSetup(t, oauthtest.Options{Now: clk.Now}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	as.SetFault("introspect", &oauthtest.Fault{Status: 500})
	for i := range 50 {
		w := call(h, "Bearer "+as.MintOpaque(nil))
		if w.Code != 503 || w.Header().Get("Retry-After") == "" {
			t.Fatalf("request %d: %d, Retry-After %q", i, w.Code, w.Header().Get("Retry-After"))
		}
	}
	if n := as.Requests("introspect"); n != 5 {
		t.Errorf("50 new tokens during the outage made %d calls, want 5 (the breaker's threshold)", n)
	}
	as.SetFault("introspect", nil)
	clk.Advance(2 * time.Second) // past the first backoff (1 s ± 20 %)
	if w := call(h, "Bearer "+as.MintOpaque(nil)); w.Code != 404 {
		t.Fatalf("after recovery: %d", w.Code)
	}
	for i := range 5 {
		if w := call(h, "Bearer "+as.MintOpaque(nil)); w.Code != 404 {
			t.Errorf("after recovery, request %d: %d", i, w.Code)
		}
	}
}

// Two claims whose names differ only in case folding would read one way to
// the built-in checks and ClaimIs and another to Principal.Claims
// (encoding/json fills `json:"workspace"` from "workſpace"): refused, on
// both paths.
func TestAttackClaimNamesEqualUnderCaseFolding(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	var reached bool
	h := g.Require(tokenguard.ClaimIs("workspace", "acme"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
	}))
	claims := oauthtest.Claims{"workspace": "acme", "work\u017fpace": "evil-corp"}
	for name, tok := range map[string]string{"JWT": as.Mint(claims), "opaque": as.MintOpaque(claims)} {
		reached = false
		w := call(h, "Bearer "+tok)
		if w.Code == 200 || reached {
			t.Errorf("%s with workspace and workſpace: %d, handler reached %v", name, w.Code, reached)
		}
	}
	reached = false
	if w := call(h, "Bearer "+as.Mint(oauthtest.Claims{"workspace": "acme"})); w.Code != 200 || !reached {
		t.Errorf("plain workspace claim: %d", w.Code)
	}
}

// A token bound to a key (cnf: DPoP's jkt, mTLS's x5t#S256) proves nothing
// without proof of possession, which is not checked yet: refused on both
// paths, the same way on a repeat (cached), unless the operator knowingly
// opts out.
func TestAttackBoundTokensNeedProofOfPossession(t *testing.T) {
	for _, optOut := range []bool{false, true} {
		as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{InsecureIgnoreTokenBinding: optOut})
		h := g.Handler(http.NotFoundHandler())
		for name, cnf := range map[string]any{
			"DPoP": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"},
			"mTLS": map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
		} {
			for kind, tok := range map[string]string{"JWT": as.Mint(oauthtest.Claims{"cnf": cnf}), "opaque": as.MintOpaque(oauthtest.Claims{"cnf": cnf})} {
				for i := range 2 {
					w := call(h, "Bearer "+tok)
					if optOut {
						if w.Code != 404 {
							t.Errorf("opt-out, %s %s: %d", name, kind, w.Code)
						}
						continue
					}
					if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "token requires proof of possession"); w.Code != 401 || got != want {
						t.Errorf("%s %s, request %d: %d %s", name, kind, i, w.Code, got)
					}
				}
			}
		}
		if w := call(h, "Bearer "+as.Mint(oauthtest.Claims{"cnf": nil})); w.Code != 404 {
			t.Errorf("unbound token: %d", w.Code)
		}
	}
}

// Unsigned tokens naming made-up tenants cannot keep real tenants out:
// while they hold every discovery slot, a tenant discovered before gets
// the slot kept for known tenants, and a new tenant waits for a slot
// instead of getting an immediate 503.
func TestAttackPatternDiscoveryCannotBeStarved(t *testing.T) {
	keys := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	var srvURL string
	release := make(chan struct{})
	srv := httptestHandler(t, func(w http.ResponseWriter, r *http.Request) {
		tenant, ok := strings.CutPrefix(r.URL.Path, "/.well-known/oauth-authorization-server/t/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.HasPrefix(tenant, "evil") {
			select { // a slow (or attacker-run) tenant: holds its slot
			case <-release:
			case <-time.After(1500 * time.Millisecond):
			}
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer":"` + srvURL + `/t/` + tenant + `","jwks_uri":"` + keys.JWKSURL() + `"}`))
	})
	srvURL = srv.URL
	g := newGuardAt(t, tokenguard.Config{
		Issuers:           []tokenguard.TrustedIssuer{{Issuer: srv.URL + "/t/*", Audience: "api://t"}},
		MaxPatternIssuers: 1,
		FetchTimeout:      5 * time.Second,
	})
	h := g.Handler(http.NotFoundHandler())
	token := func(tenant string) string {
		return keys.Mint(oauthtest.Claims{"iss": srv.URL + "/t/" + tenant, "aud": "api://t"})
	}
	if w := call(h, "Bearer "+token("acme")); w.Code != 404 {
		t.Fatalf("acme: %d", w.Code)
	}
	if w := call(h, "Bearer "+token("other")); w.Code != 404 { // evicts acme
		t.Fatalf("other: %d", w.Code)
	}
	var wg sync.WaitGroup
	for i := range 2 { // as many as there are slots for unknown tenants
		wg.Add(1)
		go func() {
			defer wg.Done()
			call(h, "Bearer "+forgedToken("evil"+string(rune('a'+i)), srv.URL))
		}()
	}
	time.Sleep(200 * time.Millisecond) // the evil discoveries hold both slots
	start := time.Now()
	if w := call(h, "Bearer "+token("acme")); w.Code != 404 {
		t.Errorf("known tenant while made-up ones hold the slots: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("known tenant waited %s", d)
	}
	if w := call(h, "Bearer "+token("newco")); w.Code != 404 {
		t.Errorf("new tenant while made-up ones hold the slots: %d (it should wait for a slot)", w.Code)
	}
	close(release)
	wg.Wait()
}

// forgedToken is an unsigned-in-effect token naming tenant: signed by a
// key no one trusts, so it passes nothing but makes us discover tenant.
func forgedToken(tenant, base string) string {
	h := base64URL(`{"alg":"ES256","kid":"x","typ":"at+jwt"}`)
	p := base64URL(`{"iss":"` + base + `/t/` + tenant + `","aud":"api://t","exp":` + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + `}`)
	return h + "." + p + "." + base64URL(strings.Repeat("s", 64))
}

// An outage logs one warning per cause per interval, with the count of
// those left out, not one per failed request.
func TestOutageWarningsAreRateLimited(t *testing.T) {
	clk := newFakeClock()
	var logs logBuffer
	as, g := opaqueSetup(t, oauthtest.Options{Now: clk.Now}, tokenguard.IntrospectionConfig{}, tokenguard.Config{Logger: logs.logger()})
	h := g.Handler(http.NotFoundHandler())
	as.SetFault("introspect", &oauthtest.Fault{Status: 500})
	for range 200 {
		if w := call(h, "Bearer "+as.MintOpaque(nil)); w.Code != 503 {
			t.Fatalf("%d during the outage", w.Code)
		}
	}
	warns := func() []string {
		var out []string
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "level=WARN") && strings.Contains(line, "request rejected") {
				out = append(out, line)
			}
		}
		return out
	}
	// The first failures (500s) and then the open breaker are two causes.
	if n := len(warns()); n == 0 || n > 3 {
		t.Fatalf("200 failed requests logged %d warnings, want 1 to 3:\n%s", n, strings.Join(warns(), "\n"))
	}
	clk.Advance(11 * time.Second)
	call(h, "Bearer "+as.MintOpaque(nil))
	last := warns()[len(warns())-1]
	if !strings.Contains(last, "suppressed=") {
		t.Errorf("the next warning after the interval does not count what was left out: %s", last)
	}
}

// An introspection answer that echoes the token (in iss, say) does not put
// it in the log.
func TestAttackTokenEchoedByTheServerStaysOutOfTheLog(t *testing.T) {
	ts := newRecordingAS(t, false)
	ts.setAnswer(func(_, token string) map[string]any {
		return map[string]any{"active": true, "iss": "https://evil.example/" + token, "aud": []string{token[:20]}}
	})
	var logs logBuffer
	g := newGuardAt(t, tokenguard.Config{Issuer: ts.issuer(""), Audience: "api://x", Logger: logs.logger(),
		Introspection: tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"}})
	const secret = "secret-opaque-token-0123456789abcdefghij"
	if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+secret); w.Code != 401 {
		t.Fatalf("%d", w.Code)
	}
	if out := logs.String(); out == "" || strings.Contains(out, secret[:16]) || strings.Contains(out, secret[10:26]) {
		t.Errorf("the log holds the token (or part of it):\n%s", out)
	}
}

// A small-order Ed25519 key in the JWKS (here the identity point, for
// which R = identity, S = 0 verifies any message) is refused when the set
// is parsed, so a token forged with it is refused too.
func TestAttackSmallOrderEd25519KeyForgesNothing(t *testing.T) {
	as := newAS(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	identity := make([]byte, 32)
	identity[0] = 1
	as.PublishExtraKey(map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "evil", "alg": "EdDSA", "x": base64URL(string(identity))})
	var logs logBuffer
	g := newGuard(t, as, tokenguard.Config{Logger: logs.logger()})
	header := base64URL(`{"alg":"EdDSA","kid":"evil","typ":"at+jwt"}`)
	payload := base64URL(`{"iss":"` + as.Issuer + `","aud":"` + as.Resource() + `","sub":"admin","exp":` + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + `}`)
	sig := append(append([]byte{}, identity...), make([]byte, 32)...)
	forged := header + "." + payload + "." + base64URL(string(sig))
	w := call(g.Handler(http.NotFoundHandler()), "Bearer "+forged)
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "unknown signing key"); w.Code != 401 || got != want {
		t.Errorf("token forged with a small-order key: %d %s", w.Code, got)
	}
	if !strings.Contains(logs.String(), "small order") {
		t.Errorf("the skipped key was not reported:\n%s", logs.String())
	}
}

// Two outages at once (the key set and introspection) are two causes:
// each is logged.
func TestOutageWarningsPerCause(t *testing.T) {
	s := newFaultSetup(t)
	s.ft.set("/jwks", "500")
	s.ft.set("/introspect", "500")
	for i := range 10 {
		s.call(s.as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": "k" + strconv.Itoa(i)}}))
		s.call(s.as.MintOpaque(nil))
	}
	out := s.logs.String()
	if !strings.Contains(out, "jwks") || !strings.Contains(out, "introspection") {
		t.Errorf("both causes should be logged:\n%s", out)
	}
}

// A cause the guard builds itself from an answer's values (here the
// audience a TokenShape reads from client_id) is scrubbed when the server
// filled that value with the token.
func TestAttackTokenEchoedInAShapeClaimStaysOutOfTheLog(t *testing.T) {
	ts := newRecordingAS(t, false)
	ts.setAnswer(func(_, token string) map[string]any {
		return map[string]any{"active": true, "client_id": token}
	})
	var logs logBuffer
	g := newGuardAt(t, tokenguard.Config{Logger: logs.logger(), Issuers: []tokenguard.TrustedIssuer{{
		Issuer: ts.issuer(""), Audience: "api://x", Shape: tokenguard.TokenShape{AudienceClaim: "client_id"},
		Introspection: &tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"},
	}}})
	const secret = "secret-opaque-token-0123456789abcdefghij"
	w := call(g.Handler(http.NotFoundHandler()), "Bearer "+secret)
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "token not meant for this resource"); w.Code != 401 || got != want {
		t.Fatalf("%d %s", w.Code, got)
	}
	if out := logs.String(); out == "" || strings.Contains(out, secret[:16]) || strings.Contains(out, secret[12:28]) {
		t.Errorf("the log holds the token (or part of it):\n%s", out)
	}
}
