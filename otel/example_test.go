package tgotel_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
	tgotel "github.com/tokenguard/tokenguard/otel"
)

// The Instrumentation's Events go in the Guard's Config; Observe adds the
// Guard's caches and key ages. Here a ManualReader stands in for an
// exporter.
func Example() {
	as := oauthtest.NewServer(oauthtest.Options{}) // stands in for the real authorization server
	defer as.Close()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	in, err := tgotel.New(tgotel.Options{MeterProvider: mp}) // TracerProvider: the global one
	if err != nil {
		log.Fatal(err)
	}

	cfg := as.GuardConfig()
	cfg.Events = in.Events()
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	unregister, err := in.Observe(g)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = unregister() }()

	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	token := as.Mint(nil)
	for _, auth := range []string{"Bearer " + token, "Bearer " + token, ""} {
		r := httptest.NewRequest("GET", "/orders", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch m.Name {
		case "tokenguard.decisions", "tokenguard.cache.lookups":
			for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
				var labels []string
				for _, kv := range p.Attributes.ToSlice() {
					if kv.Key != "tokenguard.issuer" && kv.Key != "http.response.status_code" && kv.Key != "tokenguard.stage" {
						labels = append(labels, kv.Value.Emit())
					}
				}
				lines = append(lines, fmt.Sprintf("%s %s: %d", m.Name, strings.Join(labels, " "), p.Value))
			}
		}
	}
	sort.Strings(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// tokenguard.cache.lookups introspection hit: 0
	// tokenguard.cache.lookups introspection miss: 0
	// tokenguard.cache.lookups jwt hit: 1
	// tokenguard.cache.lookups jwt miss: 1
	// tokenguard.decisions accepted jwt: 1
	// tokenguard.decisions accepted jwt_cached: 1
	// tokenguard.decisions refused none token_missing: 1
}

// Each call to the authorization server is a client span; one a request
// caused (here the introspection of an opaque token) is a child of the
// request's span, and an otelhttp transport in Config.HTTPClient would nest
// its HTTP span under it.
func ExampleInstrumentation_Events_spans() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient("resource-server", "its secret")

	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	in, err := tgotel.New(tgotel.Options{TracerProvider: tp})
	if err != nil {
		log.Fatal(err)
	}
	cfg := as.GuardConfig()
	cfg.Events = in.Events()
	cfg.Introspection = tokenguard.IntrospectionConfig{ClientID: "resource-server", ClientSecret: "its secret"}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	// The server span otelhttp.NewHandler would start.
	ctx, server := tp.Tracer("example").Start(context.Background(), "GET /orders", trace.WithSpanKind(trace.SpanKindServer))
	r := httptest.NewRequest("GET", "/orders", nil).WithContext(ctx)
	r.Header.Set("Authorization", "Bearer "+as.MintOpaque(nil))
	g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).ServeHTTP(httptest.NewRecorder(), r)
	server.End()

	for _, s := range spans.Ended() {
		parent := "root"
		if s.Parent().SpanID() == server.SpanContext().SpanID() {
			parent = "child of GET /orders"
		}
		fmt.Printf("%s (%s): %s\n", s.Name(), s.SpanKind(), parent)
	}
	// Output:
	// tokenguard discovery (client): root
	// tokenguard jwks fetch (client): root
	// tokenguard introspection (client): child of GET /orders
	// GET /orders (server): root
}

// For Prometheus, the OpenTelemetry exporter is a reader of the
// MeterProvider, and promhttp serves what it collects: here on a test
// server, scraped once. The counter tokenguard.decisions becomes
// tokenguard_decisions_total.
func Example_prometheus() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()

	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry), otelprom.WithoutScopeInfo())
	if err != nil {
		log.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	in, err := tgotel.New(tgotel.Options{MeterProvider: mp, SkipIssuerAttribute: true})
	if err != nil {
		log.Fatal(err)
	}
	cfg := as.GuardConfig()
	cfg.Events = in.Events()
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	mux.Handle("/orders", g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, auth := range []string{"Bearer " + as.Mint(nil), ""} {
		req, _ := http.NewRequest("GET", srv.URL+"/orders", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "tokenguard_decisions_total{") {
			fmt.Println(sc.Text())
		}
	}
	// Output:
	// tokenguard_decisions_total{http_response_status_code="200",tokenguard_outcome="accepted",tokenguard_path="jwt",tokenguard_stage="authenticate"} 1
	// tokenguard_decisions_total{http_response_status_code="401",tokenguard_outcome="refused",tokenguard_path="none",tokenguard_reason="token_missing",tokenguard_stage="authenticate"} 1
}
