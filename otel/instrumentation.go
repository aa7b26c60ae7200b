package tgotel

import (
	"context"
	"fmt"
	"runtime/debug"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenguard/tokenguard"
)

// ScopeName is the instrumentation scope of the meter and the tracer: the
// module's import path.
const ScopeName = "github.com/tokenguard/tokenguard/otel"

// Options configures an Instrumentation. The zero value records to the
// global providers, with the issuer on every metric.
type Options struct {
	// MeterProvider makes the meter of every metric. Nil means the global
	// one, otel.GetMeterProvider(), which follows a later
	// otel.SetMeterProvider.
	MeterProvider metric.MeterProvider
	// TracerProvider makes the tracer of the spans of upstream calls. Nil
	// means the global one, otel.GetTracerProvider(), which follows a
	// later otel.SetTracerProvider.
	TracerProvider trace.TracerProvider
	// SkipIssuerAttribute leaves tokenguard.issuer off the metrics of
	// decisions, upstream calls, limited refetches and suspensions. Each
	// issuer multiplies their series; a Guard whose Config.Issuers has a
	// pattern (one issuer per tenant) can trust thousands, so set it
	// there. Spans keep the issuer (a span is one call, not a series), and
	// so does tokenguard.jwks.age, which then covers the exact issuers of
	// the configuration only, not the tenants (Guard.Health's Tenants).
	// This defaults to false: the issuer is recorded.
	SkipIssuerAttribute bool
	// DecisionEvents adds an event named "tokenguard.decision", with the
	// attributes of tokenguard.decisions, to the span in the request's
	// context (a server span from otelhttp, say) for each decision, when
	// that span is recording. This defaults to false: the request's span
	// already carries the status, the metrics carry the reason, and an
	// event costs a few allocations on every sampled request.
	DecisionEvents bool
}

// Instrumentation turns a Guard's events into OpenTelemetry metrics and
// spans. Build one with New, put its Events in tokenguard.Config.Events,
// and register the Guard's pull views with Observe. It is safe for
// concurrent use, and one Instrumentation may serve several Guards.
type Instrumentation struct {
	tracer         trace.Tracer
	meter          metric.Meter
	skipIssuer     bool
	decisionEvents bool

	decisions        metric.Int64Counter
	decisionDuration metric.Float64Histogram
	upstreamCalls    metric.Int64Counter
	upstreamDuration metric.Float64Histogram
	limitedRefetches metric.Int64Counter
	suspended        metric.Int64UpDownCounter

	cacheLookups       metric.Int64ObservableCounter
	cacheEvictions     metric.Int64ObservableCounter
	cacheEntries       metric.Int64ObservableUpDownCounter
	introspectionCalls metric.Int64ObservableCounter
	jwksAge            metric.Float64ObservableGauge

	attrs attrCache
}

// decisionBuckets are the bucket boundaries, in seconds, of
// tokenguard.decision.duration: 1µs to 1s, for a cached token (about a
// microsecond), a signature check (tens of microseconds) and an
// introspection call (milliseconds).
var decisionBuckets = []float64{
	0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005,
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
}

// upstreamBuckets are the bucket boundaries, in seconds, of
// tokenguard.upstream.duration: those of the HTTP semantic conventions'
// client duration, with 1ms and 2.5ms in front for a server nearby.
var upstreamBuckets = []float64{
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
	0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
}

// New creates the instruments; its error is the meter's, when one of them
// cannot be made.
func New(opts Options) (*Instrumentation, error) {
	mp, tp := opts.MeterProvider, opts.TracerProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	var mopts []metric.MeterOption
	var topts []trace.TracerOption
	mopts = append(mopts, metric.WithSchemaURL(semconv.SchemaURL))
	topts = append(topts, trace.WithSchemaURL(semconv.SchemaURL))
	if v := moduleVersion(); v != "" {
		mopts = append(mopts, metric.WithInstrumentationVersion(v))
		topts = append(topts, trace.WithInstrumentationVersion(v))
	}
	in := &Instrumentation{
		tracer:         tp.Tracer(ScopeName, topts...),
		meter:          mp.Meter(ScopeName, mopts...),
		skipIssuer:     opts.SkipIssuerAttribute,
		decisionEvents: opts.DecisionEvents,
	}
	m := in.meter
	var err error
	check := func(e error) {
		if err == nil && e != nil {
			err = e
		}
	}
	var e error
	in.decisions, e = m.Int64Counter("tokenguard.decisions", metric.WithUnit("{decision}"),
		metric.WithDescription("Judgments of requests: every authentication, and every requirement that refused a principal."))
	check(e)
	in.decisionDuration, e = m.Float64Histogram("tokenguard.decision.duration", metric.WithUnit("s"),
		metric.WithDescription("Time an authentication took, upstream calls included."),
		metric.WithExplicitBucketBoundaries(decisionBuckets...))
	check(e)
	in.upstreamCalls, e = m.Int64Counter("tokenguard.upstream.calls", metric.WithUnit("{call}"),
		metric.WithDescription("Calls to authorization servers: discovery, key sets, introspection."))
	check(e)
	in.upstreamDuration, e = m.Float64Histogram("tokenguard.upstream.duration", metric.WithUnit("s"),
		metric.WithDescription("Time a call to an authorization server took."),
		metric.WithExplicitBucketBoundaries(upstreamBuckets...))
	check(e)
	in.limitedRefetches, e = m.Int64Counter("tokenguard.jwks.limited_refetches", metric.WithUnit("{refetch}"),
		metric.WithDescription("Tokens naming a key their issuer's set lacks, for which no fetch was made because one was made moments ago."))
	check(e)
	in.suspended, e = m.Int64UpDownCounter("tokenguard.introspection.suspended", metric.WithUnit("{issuer}"),
		metric.WithDescription("Issuers whose introspection is suspended after failures in a row (1 while suspended, per issuer)."))
	check(e)
	in.cacheLookups, e = m.Int64ObservableCounter("tokenguard.cache.lookups", metric.WithUnit("{lookup}"),
		metric.WithDescription("Look-ups in the verified-token cache and the introspection cache, by result (hit or miss)."))
	check(e)
	in.cacheEvictions, e = m.Int64ObservableCounter("tokenguard.cache.evictions", metric.WithUnit("{eviction}"),
		metric.WithDescription("Entries dropped from a cache for room."))
	check(e)
	in.cacheEntries, e = m.Int64ObservableUpDownCounter("tokenguard.cache.entry.count", metric.WithUnit("{entry}"),
		metric.WithDescription("Entries in a cache now."))
	check(e)
	in.introspectionCalls, e = m.Int64ObservableCounter("tokenguard.introspection.calls", metric.WithUnit("{call}"),
		metric.WithDescription("Requests made to introspection endpoints, endpoint probes included: the count an authorization server's rate limit sees."))
	check(e)
	in.jwksAge, e = m.Float64ObservableGauge("tokenguard.jwks.age", metric.WithUnit("s"),
		metric.WithDescription("Time since the key set in use was fetched, per issuer (fresh or stale sets; none for a missing one)."))
	check(e)
	if err != nil {
		return nil, fmt.Errorf("tgotel: %w", err)
	}
	return in, nil
}

// Events returns the callbacks to put in tokenguard.Config.Events. Every
// field is set; a Guard calls them as it judges requests and calls its
// authorization servers.
func (in *Instrumentation) Events() tokenguard.Events {
	return tokenguard.Events{
		Decision:          in.decision,
		Upstream:          in.upstream,
		KeyRefetchLimited: in.keyRefetchLimited,
		Breaker:           in.breaker,
	}
}

// keyRefetchLimited counts an unknown key id that caused no fetch.
func (in *Instrumentation) keyRefetchLimited(ctx context.Context, issuer string) {
	in.limitedRefetches.Add(ctx, 1, metric.WithAttributeSet(in.issuerSet(issuer)))
}

// breaker follows an issuer's introspection suspension.
func (in *Instrumentation) breaker(ctx context.Context, issuer string, open bool) {
	n := int64(-1)
	if open {
		n = 1
	}
	in.suspended.Add(ctx, n, metric.WithAttributeSet(in.issuerSet(issuer)))
}

// moduleVersion is this module's version in the program's build, "" when
// it is not known (a test, or a replace to a directory).
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range bi.Deps {
		if d.Path == ScopeName {
			if d.Replace != nil || d.Version == "(devel)" {
				return ""
			}
			return d.Version
		}
	}
	return ""
}
