package tokenguard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// recorder keeps every event a Guard reports.
type recorder struct {
	mu        sync.Mutex
	decisions []tokenguard.Decision
	calls     []tokenguard.UpstreamCall
	results   []tokenguard.UpstreamResult
	callCtx   []any // the request's marker, as Upstream saw it
	limited   []string
	breaker   []string
}

type markKey struct{}

func (rec *recorder) events() tokenguard.Events {
	return tokenguard.Events{
		Decision: func(_ context.Context, d tokenguard.Decision) {
			rec.mu.Lock()
			rec.decisions = append(rec.decisions, d)
			rec.mu.Unlock()
		},
		Upstream: func(ctx context.Context, c tokenguard.UpstreamCall) (context.Context, func(tokenguard.UpstreamResult)) {
			rec.mu.Lock()
			i := len(rec.calls)
			rec.calls = append(rec.calls, c)
			rec.results = append(rec.results, tokenguard.UpstreamResult{Status: -1})
			rec.callCtx = append(rec.callCtx, ctx.Value(markKey{}))
			rec.mu.Unlock()
			return context.WithValue(ctx, spanKey{}, c.Kind.String()), func(r tokenguard.UpstreamResult) {
				rec.mu.Lock()
				rec.results[i] = r
				rec.mu.Unlock()
			}
		},
		KeyRefetchLimited: func(_ context.Context, issuer string) {
			rec.mu.Lock()
			rec.limited = append(rec.limited, issuer)
			rec.mu.Unlock()
		},
		Breaker: func(_ context.Context, issuer string, open bool) {
			rec.mu.Lock()
			rec.breaker = append(rec.breaker, fmt.Sprint(issuer, " open=", open))
			rec.mu.Unlock()
		},
	}
}

// lastDecisions returns the decisions since the mark n and the new mark.
func (rec *recorder) since(n int) ([]tokenguard.Decision, int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]tokenguard.Decision(nil), rec.decisions[n:]...), len(rec.decisions)
}

func (rec *recorder) upstream() ([]tokenguard.UpstreamCall, []tokenguard.UpstreamResult, []any) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]tokenguard.UpstreamCall(nil), rec.calls...), append([]tokenguard.UpstreamResult(nil), rec.results...), append([]any(nil), rec.callCtx...)
}

type spanKey struct{}

// spanTransport records the span marker of each upstream HTTP request's
// context: the context Events.Upstream returned reaches the HTTP call.
type spanTransport struct {
	mu    sync.Mutex
	spans map[string][]any // path → markers
}

func (s *spanTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.spans[r.URL.Path] = append(s.spans[r.URL.Path], r.Context().Value(spanKey{}))
	s.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// Every judgment is one Decision with its path, status, reason and
// issuer; a requirement's refusal is one more.
func TestEventsDecisions(t *testing.T) {
	rec := &recorder{}
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{Events: rec.events()})
	h := g.Handler(g.RequireScopes("orders:write")(okHandler))
	jwt := as.Mint(oauthtest.Claims{"scope": "orders:write"})
	narrow := as.Mint(oauthtest.Claims{"scope": "orders:read"})
	forged := tamperSignature(as.Mint(nil))
	opaque := as.MintOpaque(oauthtest.Claims{"scope": "orders:write"})
	type want struct {
		stage  tokenguard.Stage
		status int
		reason tokenguard.Reason
		path   tokenguard.TokenPath
		issuer string
	}
	ok := func(path tokenguard.TokenPath) want {
		return want{tokenguard.StageAuthenticate, 200, "", path, as.Issuer}
	}
	_, mark := rec.since(0)
	for _, c := range []struct {
		what  string
		token string
		want  []want
	}{
		{"a JWT", jwt, []want{ok(tokenguard.PathJWT)}},
		{"the JWT again", jwt, []want{ok(tokenguard.PathJWTCached)}},
		{"no token", "", []want{{tokenguard.StageAuthenticate, 401, tokenguard.ReasonTokenMissing, tokenguard.PathNone, ""}}},
		{"forged", forged, []want{{tokenguard.StageAuthenticate, 401, tokenguard.ReasonSignatureInvalid, tokenguard.PathJWT, ""}}},
		{"forged again", forged, []want{{tokenguard.StageAuthenticate, 401, tokenguard.ReasonSignatureInvalid, tokenguard.PathRefusedCache, ""}}},
		{"opaque", opaque, []want{ok(tokenguard.PathOpaque)}},
		{"opaque again", opaque, []want{ok(tokenguard.PathOpaqueCached)}},
		{"a JWT without the scope", narrow, []want{ok(tokenguard.PathJWT), {tokenguard.StageAuthorize, 403, tokenguard.ReasonScopeInsufficient, tokenguard.PathNone, as.Issuer}}},
	} {
		auth := ""
		if c.token != "" {
			auth = "Bearer " + c.token
		}
		call(h, auth)
		var got []tokenguard.Decision
		got, mark = rec.since(mark)
		if len(got) != len(c.want) {
			t.Fatalf("%s: %d decisions %+v, want %d", c.what, len(got), got, len(c.want))
		}
		for i, d := range got {
			w := c.want[i]
			if d.Stage != w.stage || d.Status != w.status || d.Reason != w.reason || d.Path != w.path || d.Issuer != w.issuer || d.DPoP {
				t.Errorf("%s: decision %d is %+v (path %s, stage %s), want %+v", c.what, i, d, d.Path, d.Stage, w)
			}
			if d.Stage == tokenguard.StageAuthenticate && d.Duration <= 0 {
				t.Errorf("%s: duration %v", c.what, d.Duration)
			}
			if s := fmt.Sprintf("%+v", d); strings.Contains(s, c.token[min(len(c.token), 10):]) && c.token != "" {
				t.Errorf("%s: the token is in the decision: %s", c.what, s)
			}
		}
	}
}

// Each call to an authorization server is reported with its kind,
// issuer, trigger and outcome; the request's context reaches Upstream,
// and the context Upstream returns reaches the HTTP call.
func TestEventsUpstream(t *testing.T) {
	rec := &recorder{}
	spans := &spanTransport{spans: map[string][]any{}}
	clock := newFakeClock()
	as := newAS(t, oauthtest.Options{Now: clock.Now})
	as.RegisterClient(rsID, rsSecret)
	g := newGuard(t, as, tokenguard.Config{
		Events: rec.events(), HTTPClient: &http.Client{Transport: spans}, Now: clock.Now,
		Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
	})
	calls, results, _ := rec.upstream()
	wantKinds := func(calls []tokenguard.UpstreamCall, want ...string) {
		t.Helper()
		var got []string
		for _, c := range calls {
			got = append(got, fmt.Sprintf("%s %s %s", c.Kind, c.Trigger, c.Issuer))
		}
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Fatalf("calls\n got %q\nwant %q", got, want)
		}
	}
	wantKinds(calls, "discovery start ", "discovery start "+as.Issuer, "jwks start "+as.Issuer)
	if results[0].Status != 200 || results[2].Status != 200 || results[2].Keys != 1 || results[2].Skipped != 0 || results[2].Err != nil || results[2].Duration <= 0 {
		t.Fatalf("results at start %+v", results)
	}
	if calls[2].URL != as.URL+"/oauth/jwks" {
		t.Errorf("jwks URL %q", calls[2].URL)
	}

	// A request with a new key: an unknown_kid fetch in the request's
	// context; the next unknown kid within the cooldown fetches nothing.
	marked := func(token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/orders", nil)
		r = r.WithContext(context.WithValue(r.Context(), markKey{}, "request"))
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		g.Handler(okHandler).ServeHTTP(w, r)
		return w
	}
	as.RotateKey("RS256")
	if w := marked(as.Mint(nil)); w.Code != 200 {
		t.Fatalf("new key: %d", w.Code)
	}
	as.RotateKey("RS256")
	if w := marked(as.Mint(nil)); w.Code != 401 {
		t.Fatalf("second new key within the cooldown: %d", w.Code)
	}
	calls, results, ctxs := rec.upstream()
	wantKinds(calls[3:], "jwks unknown_kid "+as.Issuer)
	if results[3].Keys != 2 || results[3].Status != 200 || ctxs[3] != "request" {
		t.Errorf("unknown_kid fetch: %+v, request context %v", results[3], ctxs[3])
	}
	if rec.limited == nil || rec.limited[0] != as.Issuer {
		t.Errorf("rate-limited refetches: %v", rec.limited)
	}

	// Introspection: active, inactive, and an outage.
	if w := marked(as.MintOpaque(nil)); w.Code != 200 {
		t.Fatalf("opaque: %d", w.Code)
	}
	revoked := as.MintOpaque(nil)
	as.Revoke(revoked)
	marked(revoked)
	as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway})
	if w := marked(as.MintOpaque(nil)); w.Code != 503 {
		t.Fatalf("introspection down: %d", w.Code)
	}
	calls, results, ctxs = rec.upstream()
	wantKinds(calls[4:], "introspection  "+as.Issuer, "introspection  "+as.Issuer, "introspection  "+as.Issuer)
	if r := results[4]; r.Status != 200 || !r.Active || r.Err != nil || ctxs[4] != "request" {
		t.Errorf("active: %+v %v", r, ctxs[4])
	}
	if r := results[5]; r.Status != 200 || r.Active || r.Err != nil {
		t.Errorf("inactive: %+v", r)
	}
	if r := results[6]; r.Status != 502 || r.Active || r.Err == nil {
		t.Errorf("outage: %+v", r)
	}
	spans.mu.Lock()
	defer spans.mu.Unlock()
	for path, want := range map[string]string{"/oauth/jwks": "jwks", "/oauth/introspect": "introspection"} {
		for _, got := range spans.spans[path] {
			if got != want {
				t.Errorf("%s: the HTTP call's context has span %v, want %s", path, got, want)
			}
		}
		if len(spans.spans[path]) == 0 {
			t.Errorf("no call to %s", path)
		}
	}
}

// The breaker's changes are reported once each way.
func TestEventsBreaker(t *testing.T) {
	rec := &recorder{}
	clock := newFakeClock()
	as, g := opaqueSetup(t, oauthtest.Options{Now: clock.Now}, tokenguard.IntrospectionConfig{}, tokenguard.Config{Events: rec.events()})
	h := g.Handler(okHandler)
	as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusInternalServerError})
	for range 8 {
		call(h, "Bearer "+as.MintOpaque(nil))
	}
	as.SetFault(oauthtest.EndpointIntrospect, nil)
	clock.Advance(time.Minute)
	if w := call(h, "Bearer "+as.MintOpaque(nil)); w.Code != 200 {
		t.Fatalf("after the outage: %d", w.Code)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if want := []string{as.Issuer + " open=true", as.Issuer + " open=false"}; strings.Join(rec.breaker, "|") != strings.Join(want, "|") {
		t.Fatalf("breaker events %q, want %q", rec.breaker, want)
	}
}

// Listening costs no allocation on the cached path: a request takes as
// many with every event hooked as with none.
func TestEventsAllocateNothingOnAHit(t *testing.T) {
	as := shared(t)
	quiet := newGuard(t, as, tokenguard.Config{})
	n := 0
	loud := newGuard(t, as, tokenguard.Config{Events: tokenguard.Events{Decision: func(context.Context, tokenguard.Decision) { n++ }}})
	tok := as.Mint(nil)
	allocs := func(g *tokenguard.Guard) float64 {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		if _, err := g.Authenticate(r); err != nil {
			t.Fatal(err)
		}
		return testing.AllocsPerRun(200, func() {
			if _, err := g.Authenticate(r); err != nil {
				t.Fatal(err)
			}
		})
	}
	q, l := allocs(quiet), allocs(loud)
	if l > q || n < 200 {
		t.Fatalf("a cached hit allocates %.1f times with Events.Decision, %.1f without (%d decisions)", l, q, n)
	}
}

// A callback that panics costs its own report, nothing else: the request
// is judged as without it, and the panic is logged.
func TestEventsPanicIsContained(t *testing.T) {
	as := shared(t)
	logs := &logBuffer{}
	g := newGuard(t, as, tokenguard.Config{Logger: logs.logger(), Events: tokenguard.Events{
		Decision: func(context.Context, tokenguard.Decision) { panic("metrics bug") },
	}})
	h := g.Handler(g.RequireScopes("orders:write")(okHandler))
	if w := call(h, "Bearer "+as.Mint(oauthtest.Claims{"scope": "orders:write"})); w.Code != 200 {
		t.Fatalf("accepted token: %d", w.Code)
	}
	if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 403 {
		t.Fatalf("token without the scope: %d", w.Code)
	}
	if !strings.Contains(logs.String(), "Config.Events.Decision panicked: metrics bug") {
		t.Fatalf("the panic was not logged: %s", logs.String())
	}
}

// An active answer the Guard refuses is reported as the answer it was
// (200, active) with the refusal as Err.
func TestEventsRefusedIntrospectionAnswer(t *testing.T) {
	rec := &recorder{}
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{Events: rec.events()})
	if w := call(g.Handler(okHandler), "Bearer "+as.MintOpaque(oauthtest.Claims{"aud": "https://another-api.example"})); w.Code != 401 {
		t.Fatalf("another audience: %d", w.Code)
	}
	calls, results, _ := rec.upstream()
	last := len(calls) - 1
	if calls[last].Kind != tokenguard.UpstreamIntrospection || results[last].Status != 200 || !results[last].Active || results[last].Err == nil {
		t.Fatalf("refused answer reported as %+v %+v", calls[last], results[last])
	}
}
