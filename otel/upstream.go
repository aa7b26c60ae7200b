package tgotel

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/introspect"
)

// spanNames are the names of the spans of upstream calls, by kind.
var spanNames = [...]string{
	tokenguard.UpstreamDiscovery:     "tokenguard discovery",
	tokenguard.UpstreamKeys:          "tokenguard jwks fetch",
	tokenguard.UpstreamIntrospection: "tokenguard introspection",
}

func spanName(k tokenguard.UpstreamKind) string {
	if int(k) < len(spanNames) {
		return spanNames[k]
	}
	return "tokenguard " + k.String()
}

// upstream starts a client span for a call to an authorization server, in
// the context of the request (or start-up, or refresh) that caused it, and
// returns the span's context for the call's HTTP request; done ends the
// span and records the call's count and duration.
func (in *Instrumentation) upstream(ctx context.Context, c tokenguard.UpstreamCall) (context.Context, func(tokenguard.UpstreamResult)) {
	attrs := []attribute.KeyValue{keyKind.String(c.Kind.String())} // the metrics'
	if c.Trigger != "" {
		attrs = append(attrs, keyTrigger.String(c.Trigger))
	}
	if c.Issuer != "" && !in.skipIssuer {
		attrs = append(attrs, keyIssuer.String(c.Issuer))
	}
	spanAttrs := []attribute.KeyValue{keyKind.String(c.Kind.String())}
	if c.Trigger != "" {
		spanAttrs = append(spanAttrs, keyTrigger.String(c.Trigger))
	}
	if c.Issuer != "" {
		spanAttrs = append(spanAttrs, keyIssuer.String(c.Issuer))
	}
	if u := safeURL(c.URL); u != "" {
		spanAttrs = append(spanAttrs, semconv.URLFull(u))
	}
	ctx, span := in.tracer.Start(ctx, spanName(c.Kind),
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(spanAttrs...))
	return ctx, func(r tokenguard.UpstreamResult) {
		if errors.Is(r.Err, introspect.ErrTokenRejected) {
			// The server said active (with a 200), and the Guard refused
			// what it said: the core reports no status for it.
			r.Active = true
			if r.Status == 0 {
				r.Status = 200
			}
		}
		metricAttrs := attrs
		var end []attribute.KeyValue
		if r.Status > 0 {
			sc := semconv.HTTPResponseStatusCode(r.Status)
			metricAttrs = append(metricAttrs, sc)
			end = append(end, sc)
		}
		et := errorType(r)
		if et != "" {
			e := semconv.ErrorTypeKey.String(et)
			metricAttrs = append(metricAttrs, e)
			end = append(end, e)
		}
		switch c.Kind {
		case tokenguard.UpstreamKeys:
			if r.Err == nil {
				end = append(end, keyKeys.Int(r.Keys), keySkipped.Int(r.Skipped))
			}
		case tokenguard.UpstreamIntrospection:
			if et == "" {
				end = append(end, keyActive.Bool(r.Active))
			}
		}
		opt := metric.WithAttributeSet(attribute.NewSet(metricAttrs...))
		in.upstreamCalls.Add(ctx, 1, opt)
		in.upstreamDuration.Record(ctx, r.Duration.Seconds(), opt)
		span.SetAttributes(end...)
		if et != "" {
			// The error's text stays out: an authorization server's
			// answer may quote claim values back. Config.Logger has it.
			span.SetStatus(codes.Error, c.Kind.String()+" failed: "+et)
		}
		span.End()
	}
}

// errorType classifies a failed call for error.type, with a value of
// bounded cardinality: the HTTP status for an error status; "timeout",
// "canceled" or "connection" when no answer came; "credentials_rejected"
// when an introspection endpoint refused this resource's credentials;
// "invalid_response" for an answer that could not be used (not JSON, no
// usable key, a document naming another issuer); "_OTHER" otherwise. ""
// for a call that succeeded. An introspection whose answer the Guard
// refuses (active, but for another audience, say) is a successful call:
// the token's refusal is a decision, not an upstream failure.
func errorType(r tokenguard.UpstreamResult) string {
	err := r.Err
	if err == nil || errors.Is(err, introspect.ErrTokenRejected) {
		return ""
	}
	var ne net.Error
	switch {
	case errors.Is(err, introspect.ErrCredentialsRejected):
		return "credentials_rejected"
	case r.Status >= 400:
		return strconv.Itoa(r.Status)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case r.Status > 0, errors.Is(err, introspect.ErrBadResponse):
		return "invalid_response"
	}
	var oe *net.OpError
	var ue *url.Error
	if errors.As(err, &oe) || errors.As(err, &ue) {
		return "connection"
	}
	return semconv.ErrorTypeOther.Value.AsString()
}

// safeURL is u without userinfo, query and fragment; "" when u does not
// parse. The URLs are configuration or discovered metadata, not tokens,
// but a configured URL may carry a credential.
func safeURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Opaque != "" {
		return ""
	}
	p.User, p.RawQuery, p.ForceQuery, p.Fragment, p.RawFragment = nil, "", false, "", ""
	return p.String()
}
