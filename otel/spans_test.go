package tgotel_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
	tgotel "github.com/tokenguard/tokenguard/otel"
)

// spanTransport records the span of each upstream HTTP request's context,
// as an otelhttp transport would take it for its parent.
type spanTransport struct {
	mu    sync.Mutex
	spans map[string][]trace.SpanContext // URL path → span contexts
}

func (s *spanTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.spans[r.URL.Path] = append(s.spans[r.URL.Path], trace.SpanContextFromContext(r.Context()))
	s.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (s *spanTransport) of(path string) []trace.SpanContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]trace.SpanContext(nil), s.spans[path]...)
}

// Each upstream call is a client span named for its kind, with its
// attributes; a call a request caused is a child of the request's span,
// and the HTTP request of the call carries the call's span.
func TestSpans(t *testing.T) {
	rt := &spanTransport{spans: map[string][]trace.SpanContext{}}
	e := newEnv(t, setup{config: func(c *tokenguard.Config) { c.HTTPClient = &http.Client{Transport: rt} }})
	iss := e.as.Issuer
	h := e.g.Handler(ok)

	start := e.spans.Ended()
	if got := strings.Join(finished(start), ", "); got != "tokenguard discovery, tokenguard jwks fetch" {
		t.Fatalf("spans at start: %s", got)
	}
	for i, want := range []string{
		set("tokenguard.upstream.kind", "discovery", "tokenguard.upstream.trigger", "start", "tokenguard.issuer", iss,
			"url.full", iss+"/.well-known/oauth-authorization-server", "http.response.status_code", 200),
		set("tokenguard.upstream.kind", "jwks", "tokenguard.upstream.trigger", "start", "tokenguard.issuer", iss,
			"url.full", iss+"/oauth/jwks", "http.response.status_code", 200, "tokenguard.jwks.keys", 1, "tokenguard.jwks.skipped_keys", 0),
	} {
		s := start[i]
		if got := spanAttrs(s); got != want {
			t.Errorf("%s:\n got %s\nwant %s", s.Name(), got, want)
		}
		if s.SpanKind() != trace.SpanKindClient || s.Parent().IsValid() || s.Status().Code != codes.Unset {
			t.Errorf("%s: kind %v, parent %v, status %v", s.Name(), s.SpanKind(), s.Parent(), s.Status())
		}
		if s.InstrumentationScope().Name != tgotel.ScopeName {
			t.Errorf("%s: scope %q", s.Name(), s.InstrumentationScope().Name)
		}
	}

	// A request in a span: a token signed with a new key (an unknown_kid
	// fetch), an opaque token (an introspection), and one while the
	// endpoint fails.
	ctx, parent := e.tp.Tracer("test").Start(context.Background(), "GET /orders", trace.WithSpanKind(trace.SpanKindServer))
	e.as.RotateKey("RS256")
	if got := request(ctx, h, e.as.Mint(nil)); got != 200 {
		t.Fatalf("new key: %d", got)
	}
	if got := request(ctx, h, e.as.MintOpaque(nil)); got != 200 {
		t.Fatalf("opaque: %d", got)
	}
	e.as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway})
	if got := request(ctx, h, e.as.MintOpaque(nil)); got != 503 {
		t.Fatalf("introspection down: %d", got)
	}
	parent.End()

	spans := e.spans.Ended()[len(start):]
	if got := strings.Join(finished(spans), ", "); got != "tokenguard jwks fetch, tokenguard introspection, tokenguard introspection, GET /orders" {
		t.Fatalf("spans of the request: %s", got)
	}
	for i, want := range []struct {
		attrs  string
		status codes.Code
		desc   string
	}{
		{set("tokenguard.upstream.kind", "jwks", "tokenguard.upstream.trigger", "unknown_kid", "tokenguard.issuer", iss,
			"url.full", iss+"/oauth/jwks", "http.response.status_code", 200, "tokenguard.jwks.keys", 2, "tokenguard.jwks.skipped_keys", 0), codes.Unset, ""},
		{set("tokenguard.upstream.kind", "introspection", "tokenguard.issuer", iss,
			"url.full", iss+"/oauth/introspect", "http.response.status_code", 200, "tokenguard.introspection.active", true), codes.Unset, ""},
		{set("tokenguard.upstream.kind", "introspection", "tokenguard.issuer", iss,
			"url.full", iss+"/oauth/introspect", "http.response.status_code", 502, "error.type", "502"), codes.Error, "introspection failed: 502"},
	} {
		s := spans[i]
		if got := spanAttrs(s); got != want.attrs {
			t.Errorf("%s %d:\n got %s\nwant %s", s.Name(), i, got, want.attrs)
		}
		if s.Parent().SpanID() != parent.SpanContext().SpanID() || s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("%s %d: parent %v, want the request's %v", s.Name(), i, s.Parent().SpanID(), parent.SpanContext().SpanID())
		}
		if s.SpanKind() != trace.SpanKindClient || s.Status().Code != want.status || s.Status().Description != want.desc {
			t.Errorf("%s %d: kind %v, status %+v", s.Name(), i, s.SpanKind(), s.Status())
		}
		if len(s.Events()) != 0 {
			t.Errorf("%s %d: events %+v", s.Name(), i, s.Events())
		}
	}

	// The HTTP requests carried their call's span: what an otelhttp
	// transport in Config.HTTPClient would take as its parent.
	ids := func(ss []sdktrace.ReadOnlySpan, name string) []trace.SpanID {
		var out []trace.SpanID
		for _, s := range ss {
			if s.Name() == name {
				out = append(out, s.SpanContext().SpanID())
			}
		}
		return out
	}
	all := e.spans.Ended()
	for path, name := range map[string]string{"/oauth/jwks": "tokenguard jwks fetch", "/oauth/introspect": "tokenguard introspection"} {
		want := ids(all, name)
		got := rt.of(path)
		if len(got) != len(want) {
			t.Fatalf("%s: %d HTTP requests, %d spans", path, len(got), len(want))
		}
		for i := range got {
			if got[i].SpanID() != want[i] {
				t.Errorf("%s request %d: span %v, want %v", path, i, got[i].SpanID(), want[i])
			}
		}
	}
}

// A configured URL's query never reaches url.full (the core refuses
// userinfo and fragments; SafeURL drops them too, see TestSafeURL).
func TestSpanURL(t *testing.T) {
	var jwks string
	e := newEnv(t, setup{config: func(c *tokenguard.Config) {
		jwks = c.Issuer + "/oauth/jwks?api_key=hunter2"
		c.JWKSURL = jwks
		c.Introspection.Endpoint = c.Issuer + "/oauth/introspect?x=1"
	}})
	request(nil, e.g.Handler(ok), e.as.MintOpaque(nil))
	var got []string
	for _, s := range e.spans.Ended() {
		for _, kv := range s.Attributes() {
			if kv.Key == "url.full" {
				got = append(got, kv.Value.AsString())
			}
		}
	}
	want := []string{e.as.Issuer + "/oauth/jwks", e.as.Issuer + "/oauth/introspect"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("url.full %q, want %q (configured %q)", got, want, jwks)
	}
}

// With DecisionEvents, each decision is an event on the request's span
// when it records, and nothing when there is no span.
func TestDecisionEvents(t *testing.T) {
	e := newEnv(t, setup{opts: tgotel.Options{DecisionEvents: true}})
	h := e.g.Handler(e.g.RequireScopes("orders:write")(ok))
	ctx, span := e.tp.Tracer("test").Start(context.Background(), "GET /orders")
	request(ctx, h, e.as.Mint(oauthtest.Claims{"scope": "orders:read"}))
	request(ctx, h, "")
	request(nil, h, "")
	span.End()
	s := e.spans.Ended()[len(e.spans.Ended())-1]
	var got []string
	for _, ev := range s.Events() {
		got = append(got, ev.Name+" "+attrsOf(ev.Attributes))
	}
	want := []string{
		"tokenguard.decision " + decision("authenticate", "accepted", "jwt", 200, "", e.as.Issuer),
		"tokenguard.decision " + decision("authorize", "refused", "none", 403, "scope_insufficient", e.as.Issuer),
		"tokenguard.decision " + decision("authenticate", "refused", "none", 401, "token_missing", ""),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
}
