// Package tgotel records what a tokenguard Guard does as OpenTelemetry
// metrics and spans.
//
//	import tgotel "github.com/tokenguard/tokenguard/otel"
//
//	in, err := tgotel.New(tgotel.Options{}) // the global MeterProvider and TracerProvider
//	...
//	cfg.Events = in.Events()
//	g, err := tokenguard.New(ctx, cfg)
//	...
//	unregister, err := in.Observe(g) // caches, introspection calls, key-set ages
//	defer unregister()
//
// Events feeds the push instruments from the Guard's event hook
// (tokenguard.Config.Events): a counter and a duration histogram of
// decisions (tokenguard.decisions, tokenguard.decision.duration), the same
// for each call to an authorization server (tokenguard.upstream.calls,
// tokenguard.upstream.duration), unknown key ids for which no fetch was
// made (tokenguard.jwks.limited_refetches), and the issuers whose
// introspection is suspended (tokenguard.introspection.suspended).
// Observe registers observable instruments that read the Guard's pull
// views at each collection: cache look-ups by hit and miss, evictions and
// sizes (tokenguard.cache.*), introspection calls
// (tokenguard.introspection.calls) and the age of each issuer's key set
// (tokenguard.jwks.age). Observe's function unregisters them.
//
// Each upstream call is a client span ("tokenguard discovery",
// "tokenguard jwks fetch", "tokenguard introspection") started in the
// context of the request that caused it, so it is a child of that
// request's span, and handed to the call's HTTP request, so an
// instrumented Config.HTTPClient (otelhttp's transport) nests under it.
// A failed call ends with status Error and error.type. Decisions make no
// span: the request has its own. Options.DecisionEvents adds an event to
// it instead.
//
// No token, credential or claim value is ever recorded, nor any error
// text (an authorization server's answer may quote claims back): the
// attributes are stage, outcome, reason, path, status, issuer, kind,
// trigger, error type and, on spans, the URL without userinfo or query.
// The issuer comes from the Guard's trusted configuration, but a pattern
// issuer (one per tenant) can make thousands: Options.SkipIssuerAttribute
// drops it from the metrics.
//
// On the hot path (a cached token), a decision costs the SDK's two
// measurements and no allocation of this package: the attribute sets are
// made once per combination and reused.
package tgotel
