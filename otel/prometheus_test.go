package tgotel_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
	tgotel "github.com/tokenguard/tokenguard/otel"
)

// Scraped through the Prometheus exporter and promhttp, the metrics have
// the names and labels the README promises.
func TestPrometheus(t *testing.T) {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient(clientID, clientSecret)
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	in, err := tgotel.New(tgotel.Options{MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	cfg := as.GuardConfig()
	cfg.Events = in.Events()
	cfg.Introspection = tokenguard.IntrospectionConfig{ClientID: clientID, ClientSecret: clientSecret}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	unregister, err := in.Observe(g)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unregister() }()
	h := g.Handler(ok)
	jwt := as.Mint(nil)
	for _, tok := range []string{jwt, jwt, forge(jwt), as.MintOpaque(nil)} {
		request(nil, h, tok)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	iss := `tokenguard_issuer="` + as.Issuer + `"`
	scope := `otel_scope_name="` + tgotel.ScopeName + `"`
	for _, want := range []string{
		`# TYPE tokenguard_decisions_total counter`,
		`tokenguard_decisions_total{http_response_status_code="200",` + scope + `,otel_scope_schema_url="https://opentelemetry.io/schemas/1.43.0",otel_scope_version="",` + iss + `,tokenguard_outcome="accepted",tokenguard_path="jwt",tokenguard_stage="authenticate"} 1`,
		`tokenguard_decisions_total{http_response_status_code="200",` + scope + `,otel_scope_schema_url="https://opentelemetry.io/schemas/1.43.0",otel_scope_version="",` + iss + `,tokenguard_outcome="accepted",tokenguard_path="jwt_cached",tokenguard_stage="authenticate"} 1`,
		`tokenguard_decisions_total{http_response_status_code="401",` + scope + `,otel_scope_schema_url="https://opentelemetry.io/schemas/1.43.0",otel_scope_version="",tokenguard_outcome="refused",tokenguard_path="jwt",tokenguard_reason="signature_invalid",tokenguard_stage="authenticate"} 1`,
		`# TYPE tokenguard_decision_duration_seconds histogram`,
		`tokenguard_decision_duration_seconds_bucket{`,
		`le="1e-06"}`,
		`# TYPE tokenguard_upstream_calls_total counter`,
		`tokenguard_upstream_duration_seconds_bucket{`,
		`tokenguard_cache_lookups_total{`,
		`tokenguard_cache_evictions_total{`,
		`# TYPE tokenguard_cache_entry_count gauge`,
		`tokenguard_introspection_calls_total{`,
		`# TYPE tokenguard_jwks_age_seconds gauge`,
		`tokenguard_jwks_age_seconds{` + scope + `,otel_scope_schema_url="https://opentelemetry.io/schemas/1.43.0",otel_scope_version="",` + iss + `}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}
