package tgotel

import (
	"context"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenguard/tokenguard"
)

// The attribute keys of tokenguard's own.
const (
	keyStage   = attribute.Key("tokenguard.stage")
	keyOutcome = attribute.Key("tokenguard.outcome")
	keyReason  = attribute.Key("tokenguard.reason")
	keyPath    = attribute.Key("tokenguard.path")
	keyIssuer  = attribute.Key("tokenguard.issuer")
	keyKind    = attribute.Key("tokenguard.upstream.kind")
	keyTrigger = attribute.Key("tokenguard.upstream.trigger")
	keyCache   = attribute.Key("tokenguard.cache.name")
	keyResult  = attribute.Key("tokenguard.cache.result")
	keyKeys    = attribute.Key("tokenguard.jwks.keys")
	keySkipped = attribute.Key("tokenguard.jwks.skipped_keys")
	keyActive  = attribute.Key("tokenguard.introspection.active")
)

// outcome is a decision's status in a word: accepted (200), refused (a
// 4xx: the token or the request was wrong), unavailable (503: the
// authorization server could not be reached and nothing cached could
// decide) or error (500 and anything else: a bug or a misconfiguration).
func outcome(status int) string {
	switch {
	case status == 200:
		return "accepted"
	case status >= 400 && status < 500:
		return "refused"
	case status == 503:
		return "unavailable"
	}
	return "error"
}

// decisionKey is what a decision's attributes are made of.
type decisionKey struct {
	stage  tokenguard.Stage
	path   tokenguard.TokenPath
	status int
	reason tokenguard.Reason
	issuer string // "" with SkipIssuerAttribute
}

// decisionAttrs are one decisionKey's attributes, ready for the
// instruments.
type decisionAttrs struct {
	add    []metric.AddOption
	record []metric.RecordOption
	event  []trace.EventOption
}

// maxCachedSets bounds the attribute sets kept; past it (thousands of
// issuers, each with its own sets), sets are made for each decision, and
// SkipIssuerAttribute is the cure. It matches the SDK's default
// cardinality limit per instrument (2,000).
const maxCachedSets = 2000

// attrCache maps decision keys to their attributes: read without a lock
// on every decision, copied on write when a new combination appears
// (rarely, and a bounded number of times).
type attrCache struct {
	sets atomic.Pointer[map[decisionKey]*decisionAttrs]
	mu   sync.Mutex
}

// get returns k's attributes, made once.
func (c *attrCache) get(k decisionKey) *decisionAttrs {
	if m := c.sets.Load(); m != nil {
		if a, ok := (*m)[k]; ok {
			return a
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.sets.Load()
	if old != nil {
		if a, ok := (*old)[k]; ok {
			return a
		}
	}
	a := makeDecisionAttrs(k)
	if old != nil && len(*old) >= maxCachedSets {
		return a
	}
	m := make(map[decisionKey]*decisionAttrs, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[k] = a
	c.sets.Store(&m)
	return a
}

func lenOf(m *map[decisionKey]*decisionAttrs) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// makeDecisionAttrs builds k's attribute set: stage, outcome, path and
// status always; reason and issuer when there is one.
func makeDecisionAttrs(k decisionKey) *decisionAttrs {
	kv := []attribute.KeyValue{
		keyStage.String(k.stage.String()),
		keyOutcome.String(outcome(k.status)),
		keyPath.String(k.path.String()),
		semconv.HTTPResponseStatusCode(k.status),
	}
	if k.reason != "" {
		kv = append(kv, keyReason.String(string(k.reason)))
	}
	if k.issuer != "" {
		kv = append(kv, keyIssuer.String(k.issuer))
	}
	set := attribute.NewSet(kv...)
	opt := metric.WithAttributeSet(set)
	return &decisionAttrs{
		add:    []metric.AddOption{opt},
		record: []metric.RecordOption{opt},
		event:  []trace.EventOption{trace.WithAttributes(set.ToSlice()...)},
	}
}

// decision records one judgment: a count, and for an authentication its
// duration. An instrument a View drops (or a no-op provider) costs
// nothing: the SDK's work for a measurement, most of a decision's cost,
// is skipped.
func (in *Instrumentation) decision(ctx context.Context, d tokenguard.Decision) {
	count := in.decisions.Enabled(ctx)
	timed := d.Stage == tokenguard.StageAuthenticate && in.decisionDuration.Enabled(ctx)
	if !count && !timed && !in.decisionEvents {
		return
	}
	k := decisionKey{stage: d.Stage, path: d.Path, status: d.Status, reason: d.Reason}
	if !in.skipIssuer {
		k.issuer = d.Issuer
	}
	a := in.attrs.get(k)
	if count {
		in.decisions.Add(ctx, 1, a.add...)
	}
	if timed {
		in.decisionDuration.Record(ctx, d.Duration.Seconds(), a.record...)
	}
	if in.decisionEvents {
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("tokenguard.decision", a.event...)
		}
	}
}

// issuerSet is the attribute set of the per-issuer counters: the issuer,
// or nothing with SkipIssuerAttribute.
func (in *Instrumentation) issuerSet(issuer string) attribute.Set {
	if in.skipIssuer || issuer == "" {
		return *attribute.EmptySet()
	}
	return attribute.NewSet(keyIssuer.String(issuer))
}
