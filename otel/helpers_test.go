package tgotel_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
	tgotel "github.com/tokenguard/tokenguard/otel"
)

const clientID, clientSecret = "resource-server", "rs secret:%@"

// env is an authorization server, a Guard that trusts it (JWTs, and
// opaque tokens through introspection) and the SDK's in-memory reader and
// span recorder behind the Instrumentation.
type env struct {
	as     *oauthtest.Server
	g      *tokenguard.Guard
	in     *tgotel.Instrumentation
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	clock  *fakeClock
}

type setup struct {
	as     oauthtest.Options
	opts   tgotel.Options
	config func(*tokenguard.Config)
	views  []sdkmetric.View
}

func newEnv(t testing.TB, s setup) *env {
	t.Helper()
	e := &env{clock: newFakeClock(), reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	if s.as.Now == nil {
		s.as.Now = e.clock.Now
	}
	e.as = oauthtest.NewServer(s.as)
	t.Cleanup(e.as.Close)
	e.as.RegisterClient(clientID, clientSecret)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader), sdkmetric.WithView(s.views...))
	e.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()); _ = e.tp.Shutdown(context.Background()) })
	s.opts.MeterProvider, s.opts.TracerProvider = mp, e.tp
	in, err := tgotel.New(s.opts)
	if err != nil {
		t.Fatal(err)
	}
	e.in = in
	cfg := e.as.GuardConfig()
	cfg.Now = e.clock.Now
	cfg.Events = in.Events()
	cfg.Introspection = tokenguard.IntrospectionConfig{ClientID: clientID, ClientSecret: clientSecret}
	if s.config != nil {
		s.config(&cfg)
	}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	e.g = g
	return e
}

// request sends one GET /orders with the token (none for "") through h,
// in ctx when it is not nil.
func request(ctx context.Context, h http.Handler, token string) int {
	r := httptest.NewRequest("GET", "/orders", nil)
	if ctx != nil {
		r = r.WithContext(ctx)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})

func forge(tok string) string { return tok[:len(tok)-4] + "AAAA" }

// collect reads every metric of the scope.
func (e *env) collect(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != tgotel.ScopeName {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// attrs is a set as "k=v,k=v", sorted by key.
func attrs(s attribute.Set) string { return s.Encoded(attribute.DefaultEncoder()) }

// points are a metric's values by attributes: sums and gauges as their
// value, histograms as their count.
func points(t testing.TB, m metricdata.Metrics) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	add := func(s attribute.Set, v float64) {
		k := attrs(s)
		if _, dup := out[k]; dup {
			t.Errorf("%s: two points with %s", m.Name, k)
		}
		out[k] = v
	}
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			add(p.Attributes, float64(p.Value))
		}
	case metricdata.Sum[float64]:
		for _, p := range d.DataPoints {
			add(p.Attributes, p.Value)
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			add(p.Attributes, p.Value)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			add(p.Attributes, float64(p.Value))
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			add(p.Attributes, float64(p.Count))
		}
	default:
		t.Fatalf("%s: data %T", m.Name, m.Data)
	}
	return out
}

// wantPoints compares a metric's points with want exactly.
func wantPoints(t testing.TB, ms map[string]metricdata.Metrics, name string, want map[string]float64) {
	t.Helper()
	m, found := ms[name]
	if !found {
		if len(want) > 0 {
			t.Errorf("no metric %s", name)
		}
		return
	}
	got := points(t, m)
	var diff []string
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			diff = append(diff, fmt.Sprintf("  %s: got %v, want %v (present %v)", k, g, v, ok))
		}
	}
	for k, v := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, fmt.Sprintf("  %s: got %v, not wanted", k, v))
		}
	}
	if len(diff) > 0 {
		sort.Strings(diff)
		t.Errorf("%s:\n%s", name, strings.Join(diff, "\n"))
	}
}

// finished are the ended spans' names, in order.
func finished(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

// spanAttrs is a span's attributes as "k=v,k=v", sorted.
func spanAttrs(s sdktrace.ReadOnlySpan) string {
	return attrs(attribute.NewSet(s.Attributes()...))
}

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

// attrsOf is a list of attributes as "k=v,k=v", sorted.
func attrsOf(kv []attribute.KeyValue) string { return attrs(attribute.NewSet(kv...)) }
