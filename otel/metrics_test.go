package tgotel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
	tgotel "github.com/tokenguard/tokenguard/otel"
)

// set is the encoded attribute set of the pairs k1, v1, k2, v2, ...;
// a value "" leaves its key out, an int value is an int attribute.
func set(kv ...any) string {
	var out []attribute.KeyValue
	for i := 0; i < len(kv); i += 2 {
		k := attribute.Key(kv[i].(string))
		switch v := kv[i+1].(type) {
		case string:
			if v != "" {
				out = append(out, k.String(v))
			}
		case int:
			out = append(out, k.Int(v))
		case bool:
			out = append(out, k.Bool(v))
		}
	}
	return attrs(attribute.NewSet(out...))
}

// decision is the attribute set of a decision.
func decision(stage, outcome, path string, status int, reason, issuer string) string {
	return set("tokenguard.stage", stage, "tokenguard.outcome", outcome, "tokenguard.path", path,
		"http.response.status_code", status, "tokenguard.reason", reason, "tokenguard.issuer", issuer)
}

// Each kind of request is counted once under its stage, outcome, path,
// status, reason and issuer; each authentication's duration is in the
// histogram with the same attributes; a requirement's refusal is a second
// decision, of the authorize stage, with no duration.
func TestDecisions(t *testing.T) {
	for _, skip := range []bool{false, true} {
		e := newEnv(t, setup{opts: tgotel.Options{SkipIssuerAttribute: skip}})
		iss := e.as.Issuer
		if skip {
			iss = ""
		}
		h := e.g.Handler(e.g.RequireScopes("orders:write")(ok))
		jwt := e.as.Mint(oauthtest.Claims{"scope": "orders:write"})
		narrow := e.as.Mint(oauthtest.Claims{"scope": "orders:read"})
		opaque := e.as.MintOpaque(oauthtest.Claims{"scope": "orders:write"})
		for _, c := range []struct {
			token string
			want  int
		}{
			{jwt, 200}, {jwt, 200}, {"", 401}, {forge(jwt), 401}, {forge(jwt), 401},
			{opaque, 200}, {opaque, 200}, {narrow, 403}, {"not-a-token-anyone-issued", 401},
		} {
			if got := request(nil, h, c.token); got != c.want {
				t.Fatalf("token %.12q: %d, want %d", c.token, got, c.want)
			}
		}
		e.as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway})
		if got := request(nil, h, e.as.MintOpaque(nil)); got != 503 {
			t.Fatalf("introspection down: %d", got)
		}

		ms := e.collect(t)
		want := map[string]float64{
			decision("authenticate", "accepted", "jwt", 200, "", iss):                           2, // jwt and narrow
			decision("authenticate", "accepted", "jwt_cached", 200, "", iss):                    1,
			decision("authenticate", "refused", "none", 401, "token_missing", ""):               1,
			decision("authenticate", "refused", "jwt", 401, "signature_invalid", ""):            1,
			decision("authenticate", "refused", "refused_cached", 401, "signature_invalid", ""): 1,
			decision("authenticate", "accepted", "opaque", 200, "", iss):                        1,
			decision("authenticate", "accepted", "opaque_cached", 200, "", iss):                 1,
			decision("authorize", "refused", "none", 403, "scope_insufficient", iss):            1,
			decision("authenticate", "refused", "opaque", 401, "token_inactive", ""):            1,
			decision("authenticate", "unavailable", "opaque", 503, "upstream_unavailable", ""):  1,
		}
		wantPoints(t, ms, "tokenguard.decisions", want)
		delete(want, decision("authorize", "refused", "none", 403, "scope_insufficient", iss))
		wantPoints(t, ms, "tokenguard.decision.duration", want)

		d := ms["tokenguard.decisions"]
		if d.Unit != "{decision}" || d.Description == "" {
			t.Errorf("decisions: unit %q, description %q", d.Unit, d.Description)
		}
		if s, isSum := d.Data.(metricdata.Sum[int64]); !isSum || !s.IsMonotonic || s.Temporality != metricdata.CumulativeTemporality {
			t.Errorf("decisions: %T %+v", d.Data, d.Data)
		}
		hist := ms["tokenguard.decision.duration"]
		hd, isHist := hist.Data.(metricdata.Histogram[float64])
		if hist.Unit != "s" || !isHist {
			t.Fatalf("duration: unit %q, %T", hist.Unit, hist.Data)
		}
		wantBounds := []float64{1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}
		for _, p := range hd.DataPoints {
			if !slices.Equal(p.Bounds, wantBounds) {
				t.Errorf("bounds %v", p.Bounds)
			}
			if p.Sum <= 0 || p.Sum > 10 {
				t.Errorf("%s: sum %v s", attrs(p.Attributes), p.Sum)
			}
		}
	}
}

// Every call to the authorization server is counted with its kind,
// trigger, issuer, status and error type, and timed; an unknown key id
// within the cooldown is a limited refetch.
func TestUpstreamMetrics(t *testing.T) {
	e := newEnv(t, setup{})
	iss := e.as.Issuer
	h := e.g.Handler(ok)
	e.as.RotateKey("RS256")
	if got := request(nil, h, e.as.Mint(nil)); got != 200 {
		t.Fatalf("new key: %d", got)
	}
	e.as.RotateKey("RS256")
	if got := request(nil, h, e.as.Mint(nil)); got != 401 {
		t.Fatalf("second new key within the cooldown: %d", got)
	}
	request(nil, h, e.as.MintOpaque(nil))
	revoked := e.as.MintOpaque(nil)
	e.as.Revoke(revoked)
	request(nil, h, revoked)
	request(nil, h, e.as.MintOpaque(oauthtest.Claims{"aud": "https://elsewhere.example"})) // active, refused here
	e.as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway})
	request(nil, h, e.as.MintOpaque(nil))
	e.as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusOK, Body: "not json"})
	request(nil, h, e.as.MintOpaque(nil))

	ms := e.collect(t)
	call := func(kind, trigger string, status int, errType string) string {
		return set("tokenguard.upstream.kind", kind, "tokenguard.upstream.trigger", trigger, "tokenguard.issuer", iss,
			"http.response.status_code", status, "error.type", errType)
	}
	want := map[string]float64{
		call("discovery", "start", 200, ""):                1,
		call("jwks", "start", 200, ""):                     1,
		call("jwks", "unknown_kid", 200, ""):               1,
		call("introspection", "", 200, ""):                 3, // active, inactive, and active for another audience
		call("introspection", "", 502, "502"):              1,
		call("introspection", "", 200, "invalid_response"): 1,
	}
	wantPoints(t, ms, "tokenguard.upstream.calls", want)
	wantPoints(t, ms, "tokenguard.upstream.duration", want)
	wantPoints(t, ms, "tokenguard.jwks.limited_refetches", map[string]float64{set("tokenguard.issuer", iss): 1})
	for name, unit := range map[string]string{
		"tokenguard.upstream.calls": "{call}", "tokenguard.upstream.duration": "s", "tokenguard.jwks.limited_refetches": "{refetch}",
	} {
		if m := ms[name]; m.Unit != unit || m.Description == "" {
			t.Errorf("%s: unit %q, description %q", name, m.Unit, m.Description)
		}
	}
	hd := ms["tokenguard.upstream.duration"].Data.(metricdata.Histogram[float64])
	wantBounds := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	for _, p := range hd.DataPoints {
		if !slices.Equal(p.Bounds, wantBounds) || p.Sum <= 0 {
			t.Errorf("%s: bounds %v, sum %v", attrs(p.Attributes), p.Bounds, p.Sum)
		}
	}
}

// An issuer's introspection is 1 in tokenguard.introspection.suspended
// while its breaker is open, and 0 again once it closes.
func TestSuspended(t *testing.T) {
	e := newEnv(t, setup{})
	h := e.g.Handler(ok)
	e.as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusInternalServerError})
	for range 8 {
		request(nil, h, e.as.MintOpaque(nil))
	}
	ms := e.collect(t)
	wantPoints(t, ms, "tokenguard.introspection.suspended", map[string]float64{set("tokenguard.issuer", e.as.Issuer): 1})
	if m := ms["tokenguard.introspection.suspended"]; m.Unit != "{issuer}" || m.Data.(metricdata.Sum[int64]).IsMonotonic {
		t.Errorf("suspended: unit %q, %+v", m.Unit, m.Data)
	}
	e.as.SetFault(oauthtest.EndpointIntrospect, nil)
	e.clock.Advance(time.Minute)
	if got := request(nil, h, e.as.MintOpaque(nil)); got != 200 {
		t.Fatalf("after the outage: %d", got)
	}
	wantPoints(t, e.collect(t), "tokenguard.introspection.suspended", map[string]float64{set("tokenguard.issuer", e.as.Issuer): 0})
}

// With SkipIssuerAttribute, no metric of an event carries the issuer.
func TestSkipIssuerAttribute(t *testing.T) {
	e := newEnv(t, setup{opts: tgotel.Options{SkipIssuerAttribute: true}})
	h := e.g.Handler(ok)
	request(nil, h, e.as.Mint(nil))
	e.as.RotateKey("RS256")
	request(nil, h, e.as.Mint(nil))
	e.as.RotateKey("RS256")
	request(nil, h, e.as.Mint(nil))
	e.as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusInternalServerError})
	for range 6 {
		request(nil, h, e.as.MintOpaque(nil))
	}
	ms := e.collect(t)
	for _, name := range []string{"tokenguard.decisions", "tokenguard.decision.duration", "tokenguard.upstream.calls",
		"tokenguard.upstream.duration", "tokenguard.jwks.limited_refetches", "tokenguard.introspection.suspended"} {
		m, found := ms[name]
		if !found {
			t.Errorf("no %s", name)
			continue
		}
		for k := range points(t, m) {
			if slices.Contains(attrKeys(k), "tokenguard.issuer") {
				t.Errorf("%s: %s", name, k)
			}
		}
	}
	wantPoints(t, ms, "tokenguard.jwks.limited_refetches", map[string]float64{"": 1})
	wantPoints(t, ms, "tokenguard.introspection.suspended", map[string]float64{"": 1})
}

// attrKeys are the keys of an encoded set.
func attrKeys(encoded string) []string {
	var out []string
	for _, kv := range strings.Split(encoded, ",") {
		k, _, _ := strings.Cut(kv, "=")
		out = append(out, k)
	}
	return out
}

// Decisions from many goroutines at once are all counted (and, under
// -race, share the attribute cache safely).
func TestConcurrentDecisions(t *testing.T) {
	e := newEnv(t, setup{})
	h := e.g.Handler(ok)
	tokens := []string{e.as.Mint(nil), e.as.Mint(oauthtest.Claims{"sub": "other"}), "", e.as.MintOpaque(nil)}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				request(nil, h, tokens[(w+i)%len(tokens)])
			}
		}()
	}
	wg.Wait()
	total := 0.0
	for _, v := range points(t, e.collect(t)["tokenguard.decisions"]) {
		total += v
	}
	if total != 400 {
		t.Fatalf("%v decisions counted, want 400", total)
	}
}

// A Guard's hit path allocates no more with tgotel's Events, on the SDK,
// than with none.
func TestNoAllocationOnAHit(t *testing.T) {
	e := newEnv(t, setup{})
	cfg := e.as.GuardConfig()
	quiet, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	tok := e.as.Mint(nil)
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
	if q, l := allocs(quiet), allocs(e.g); l > q {
		t.Fatalf("a cached hit allocates %.1f times with tgotel, %.1f without", l, q)
	}
}

// New with no providers takes the global ones (no-ops by default), and
// its Events and Observe work on them.
func TestGlobalProviders(t *testing.T) {
	in, err := tgotel.New(tgotel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	cfg := as.GuardConfig()
	cfg.Events = in.Events()
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	unregister, err := in.Observe(g)
	if err != nil {
		t.Fatal(err)
	}
	if got := request(nil, g.Handler(ok), as.Mint(nil)); got != 200 {
		t.Fatalf("%d", got)
	}
	if err := unregister(); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Observe(nil); err == nil {
		t.Fatal("Observe(nil) succeeded")
	}
}

// An instrument a View drops is skipped; the others still record.
func TestDroppedInstrument(t *testing.T) {
	e := newEnv(t, setup{views: []sdkmetric.View{dropDuration}})
	h := e.g.Handler(ok)
	request(nil, h, e.as.Mint(nil))
	request(nil, h, "")
	ms := e.collect(t)
	if _, found := ms["tokenguard.decision.duration"]; found {
		t.Error("the dropped histogram was exported")
	}
	wantPoints(t, ms, "tokenguard.decisions", map[string]float64{
		decision("authenticate", "accepted", "jwt", 200, "", e.as.Issuer):     1,
		decision("authenticate", "refused", "none", 401, "token_missing", ""): 1,
	})
}
