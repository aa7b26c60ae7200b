package tgotel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
	tgotel "github.com/tokenguard/tokenguard/otel"
)

// dropDuration is a View that drops the decision histogram, one of the
// two measurements of a decision.
var dropDuration = sdkmetric.NewView(sdkmetric.Instrument{Name: "tokenguard.decision.duration"},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationDrop{}})

// BenchmarkCachedJWT is a cached JWT through Authenticate with no Events
// (the baseline) and with tgotel's Events on the SDK's MeterProvider (a
// ManualReader): what the metrics cost on the hot path. "drop-duration"
// drops the histogram with a View. "sampled" runs
// the request in a sampled span, where the SDK also keeps exemplars, and
// "decision-events" adds DecisionEvents there.
func BenchmarkCachedJWT(b *testing.B) {
	as := oauthtest.NewServer(oauthtest.Options{Algorithms: []string{"ES256"}})
	defer as.Close()
	token := as.Mint(nil)
	for _, c := range []struct {
		name    string
		tgotel  bool
		opts    tgotel.Options
		sampled bool
		views   []sdkmetric.View
	}{
		{name: "events=none"},
		{name: "events=tgotel", tgotel: true},
		{name: "events=tgotel-skip-issuer", tgotel: true, opts: tgotel.Options{SkipIssuerAttribute: true}},
		{name: "events=tgotel-drop-duration", tgotel: true, views: []sdkmetric.View{dropDuration}},
		{name: "events=tgotel-sampled", tgotel: true, sampled: true},
		{name: "events=tgotel-sampled-decision-events", tgotel: true, sampled: true, opts: tgotel.Options{DecisionEvents: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := as.GuardConfig()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()), sdkmetric.WithView(c.views...))
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()))
			defer func() { _ = mp.Shutdown(context.Background()); _ = tp.Shutdown(context.Background()) }()
			if c.tgotel {
				c.opts.MeterProvider, c.opts.TracerProvider = mp, tp
				in, err := tgotel.New(c.opts)
				if err != nil {
					b.Fatal(err)
				}
				cfg.Events = in.Events()
			}
			g, err := tokenguard.New(context.Background(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			r := httptest.NewRequest("GET", "/orders", nil)
			r.Header.Set("Authorization", "Bearer "+token)
			if c.sampled {
				ctx, span := tp.Tracer("bench").Start(context.Background(), "GET /orders")
				defer span.End()
				r = r.WithContext(ctx)
			}
			authenticate := func(r *http.Request) {
				if _, err := g.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
			authenticate(r)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				authenticate(r)
			}
		})
	}
}

// BenchmarkSDKFloor is what the SDK itself takes for the two measurements
// of a decision (the counter's Add and the histogram's Record, with a
// precomputed set of the same five attributes): the part of
// BenchmarkCachedJWT/tgotel that no instrumentation on the SDK can save.
func BenchmarkSDKFloor(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	m := mp.Meter("bench")
	counter, _ := m.Int64Counter("c")
	hist, _ := m.Float64Histogram("h", metric.WithExplicitBucketBoundaries(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1))
	set := attribute.NewSet(attribute.String("tokenguard.stage", "authenticate"), attribute.String("tokenguard.outcome", "accepted"),
		attribute.String("tokenguard.path", "jwt_cached"), attribute.Int("http.response.status_code", 200),
		attribute.String("tokenguard.issuer", "https://as.example"))
	add := []metric.AddOption{metric.WithAttributeSet(set)}
	rec := []metric.RecordOption{metric.WithAttributeSet(set)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		counter.Add(ctx, 1, add...)
		hist.Record(ctx, 1e-6, rec...)
	}
}
