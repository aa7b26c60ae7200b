package tgotel_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tokenguard/tokenguard/oauthtest"
	tgotel "github.com/tokenguard/tokenguard/otel"
)

// leaks reports whether s holds secret or 12 bytes of it in a row.
func leaks(s, secret string) bool {
	const window = 12
	if len(secret) <= window {
		return strings.Contains(s, secret)
	}
	for i := 0; i+window <= len(secret); i++ {
		if strings.Contains(s, secret[i:i+window]) {
			return true
		}
	}
	return false
}

// No token, claim value or credential reaches a metric or a span, whatever
// the request: valid, forged, expired, for another audience, opaque,
// revoked, during an introspection outage or with a garbage answer, or
// signed with a key the server has not published yet.
func TestNoSecretInTelemetry(t *testing.T) {
	e := newEnv(t, setup{opts: tgotel.Options{DecisionEvents: true}})
	unregister, err := e.in.Observe(e.g)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unregister() }()
	h := e.g.Handler(e.g.RequireScopes("orders:write")(ok))
	ctx, span := e.tp.Tracer("test").Start(context.Background(), "GET /orders")

	claims := func(extra ...string) oauthtest.Claims {
		c := oauthtest.Claims{"sub": "subject-value-5be1c7", "client_id": "client-value-e39d02", "scope": "orders:write", "tenant": "claim-value-77a0f4"}
		for i := 0; i < len(extra); i += 2 {
			c[extra[i]] = extra[i+1]
		}
		return c
	}
	secrets := []string{clientSecret, "subject-value-5be1c7", "client-value-e39d02", "claim-value-77a0f4", "audience-value-0c9e1d"}
	var tokens []string
	send := func(tok string) {
		tokens = append(tokens, tok)
		request(ctx, h, tok)
	}
	jwt := e.as.Mint(claims())
	send(jwt)
	send(jwt)
	send(forge(jwt))
	send(e.as.Mint(claims("aud", "audience-value-0c9e1d")))
	send(e.as.Mint(claims("scope", "orders:read")))
	expired := claims()
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	send(e.as.Mint(expired))
	send(e.as.MintWith(oauthtest.MintOptions{Claims: claims(), Header: map[string]any{"kid": "kid-value-41f0"}}))
	e.as.RotateKey("ES256")
	send(e.as.Mint(claims()))
	opaque := e.as.MintOpaque(claims())
	send(opaque)
	send(opaque)
	send(e.as.MintOpaque(claims("aud", "audience-value-0c9e1d")))
	revoked := e.as.MintOpaque(claims())
	e.as.Revoke(revoked)
	send(revoked)
	e.as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadRequest, Body: `{"error":"invalid_request","error_description":"` + opaque + `"}`})
	send(e.as.MintOpaque(claims()))
	e.as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusOK, Body: `{"active":true,"sub":"subject-value-5be1c7","exp":"claim-value-77a0f4"}`})
	send(e.as.MintOpaque(claims()))
	e.as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway})
	for range 6 {
		send(e.as.MintOpaque(claims()))
	}
	send("garbage-token-value-3f9a1b0c")
	span.End()

	var seen []string // every string that went into telemetry
	kvs := func(where string, kv []attribute.KeyValue) {
		for _, a := range kv {
			seen = append(seen, where+" "+string(a.Key)+"="+a.Value.Emit())
		}
	}
	for _, s := range e.spans.Ended() {
		seen = append(seen, "span "+s.Name(), "status "+s.Status().Description)
		kvs("span "+s.Name(), s.Attributes())
		for _, ev := range s.Events() {
			seen = append(seen, "event "+ev.Name)
			kvs("event "+ev.Name, ev.Attributes)
		}
	}
	for _, m := range e.collect(t) {
		seen = append(seen, "metric "+m.Name+" "+m.Description+" "+m.Unit)
		sets := func(s attribute.Set) { kvs("metric "+m.Name, s.ToSlice()) }
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				sets(p.Attributes)
				for _, x := range p.Exemplars {
					kvs("exemplar", x.FilteredAttributes)
				}
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				sets(p.Attributes)
				for _, x := range p.Exemplars {
					kvs("exemplar", x.FilteredAttributes)
				}
			}
		case metricdata.Gauge[float64]:
			for _, p := range d.DataPoints {
				sets(p.Attributes)
			}
		default:
			t.Fatalf("%s: %T", m.Name, m.Data)
		}
	}
	if len(seen) < 100 {
		t.Fatalf("only %d strings recorded", len(seen))
	}
	for _, s := range seen {
		for i, tok := range tokens {
			if leaks(s, tok) {
				t.Errorf("token %d in %q", i, s)
			}
		}
		for _, secret := range append(secrets, "kid-value-41f0") {
			if leaks(s, secret) {
				t.Errorf("%q in %q", secret, s)
			}
		}
	}
	if t.Failed() {
		t.Log(strings.Join(seen, "\n"))
	}
	// The scan saw every kind of call and decision it was meant to.
	all := strings.Join(seen, "\n")
	for _, want := range []string{"error.type=400", "error.type=invalid_response", "error.type=502", "tokenguard.reason=audience_mismatch",
		"tokenguard.reason=signature_invalid", "tokenguard.reason=token_expired", "tokenguard.reason=token_inactive", "tokenguard.reason=scope_insufficient",
		"tokenguard.upstream.trigger=unknown_kid", "tokenguard.reason=upstream_unavailable", "event tokenguard.decision"} {
		if !strings.Contains(all, want) {
			t.Errorf("nothing recorded %s", want)
		}
	}
}
