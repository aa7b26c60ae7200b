package tokenguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tokenguard/tokenguard/internal/fetch"
	"github.com/tokenguard/tokenguard/introspect"
	"github.com/tokenguard/tokenguard/jwks"
)

// Events are callbacks that tell what a Guard does, for metrics, traces
// and audit (Config.Events); the module
// github.com/tokenguard/tokenguard/otel turns them into OpenTelemetry
// metrics and spans. Each is optional. They run synchronously on the path
// they report (Decision on every request), so they must be fast, must
// not block, and must be safe for concurrent use. None is ever given a
// token, a credential or a claim value; the URLs are configuration or
// discovered metadata.
type Events struct {
	// Decision is called once for each judgment: every Authenticate (and
	// so every request through Handler, Optional or an adapter), and every
	// Check that refuses a Principal for a requirement.
	Decision func(ctx context.Context, d Decision)
	// Upstream is called as each call to an authorization server starts
	// (discovery, key set, introspection), with the context of the
	// request that caused it, or of New, or the Guard's own for a
	// background refresh. The context it returns is the call's: a span
	// started in it becomes the parent of the HTTP request (with an
	// instrumented Config.HTTPClient), though only the Guard's own
	// context cancels a call that serves several requests. done (which
	// may be nil) is called once with the outcome.
	Upstream func(ctx context.Context, call UpstreamCall) (_ context.Context, done func(UpstreamResult))
	// KeyRefetchLimited is called when a token names a key its issuer's
	// set lacks and no fetch is made because one was made moments ago
	// (Config.UnknownKeyCooldown, or the server's Retry-After).
	KeyRefetchLimited func(ctx context.Context, issuer string)
	// Breaker is called when an issuer's introspection is suspended after
	// failures in a row (open) or resumes (closed).
	Breaker func(ctx context.Context, issuer string, open bool)
}

// Decision is one judgment of a request, for Events.Decision.
type Decision struct {
	// Stage is StageAuthenticate for the token's judgment and
	// StageAuthorize for a requirement's refusal of a Principal.
	Stage Stage
	// Status is 200 for an accepted token, else the status of the answer
	// (400, 401, 403, 500, 503).
	Status int
	// Reason is why it was refused; "" when accepted.
	Reason Reason
	// Path is how the token was judged.
	Path TokenPath
	// Issuer is the issuer of an accepted token (and of a refused one
	// when known); "" when there was none.
	Issuer string
	// DPoP reports a request of the DPoP scheme.
	DPoP bool
	// Duration is the time the judgment took.
	Duration time.Duration
}

// Stage is the step a Decision reports.
type Stage uint8

// The stages.
const (
	StageAuthenticate Stage = iota // the token, its binding and Config.ValidateClaims
	StageAuthorize                 // a requirement (scope, role, claim) the Principal failed
)

// String is the stage's name: "authenticate" or "authorize".
func (s Stage) String() string {
	if s == StageAuthorize {
		return "authorize"
	}
	return "authenticate"
}

// TokenPath says how a token was judged.
type TokenPath uint8

// The paths.
const (
	PathNone         TokenPath = iota // no token, or refused before it was read
	PathJWT                           // a JWT verified with the issuer's keys
	PathJWTCached                     // a JWT found in the verified-token cache
	PathRefusedCache                  // a token refused before, refused again from the cache
	PathOpaque                        // introspected: a call, a shared flight or the fleet's store
	PathOpaqueCached                  // an answer from the introspection cache
)

// String is the path's name, as metrics label it.
func (p TokenPath) String() string {
	switch p {
	case PathJWT:
		return "jwt"
	case PathJWTCached:
		return "jwt_cached"
	case PathRefusedCache:
		return "refused_cached"
	case PathOpaque:
		return "opaque"
	case PathOpaqueCached:
		return "opaque_cached"
	}
	return "none"
}

// UpstreamKind is what an upstream call fetches.
type UpstreamKind uint8

// The kinds of upstream call.
const (
	UpstreamDiscovery     UpstreamKind = iota // RFC 8414 or RFC 9728 metadata
	UpstreamKeys                              // a JWK Set
	UpstreamIntrospection                     // an RFC 7662 request
)

// String is the kind's name: "discovery", "jwks" or "introspection".
func (k UpstreamKind) String() string {
	switch k {
	case UpstreamKeys:
		return "jwks"
	case UpstreamIntrospection:
		return "introspection"
	}
	return "discovery"
}

// UpstreamCall describes a call to an authorization server, for
// Events.Upstream.
type UpstreamCall struct {
	Kind UpstreamKind
	// Issuer is the issuer the call is for; for the resource's own
	// metadata (RFC 9728), "". For the discovery of an issuer a
	// Config.Issuers pattern matched, it is the pattern: the issuer is
	// then only what an unverified token says.
	Issuer string
	// URL is the document's or the endpoint's URL; "" for the discovery
	// of a pattern's issuer.
	URL string
	// Trigger says why a key set is fetched: "start", "schedule",
	// "unknown_kid" or "refresh"; for discovery, "start" or "pattern"
	// (an issuer a Config.Issuers pattern matched, found on first use);
	// for introspection, "" ("probe" for the call that checks whether the
	// endpoint answers well-formed requests at all).
	Trigger string
}

// UpstreamResult is the outcome of an upstream call.
type UpstreamResult struct {
	// Status is the HTTP status, 0 when there was no answer.
	Status int
	// Err is nil for a call that succeeded. A token judged inactive is a
	// success; an active answer the Guard refused (another audience, a
	// refresh token) has Status 200, Active true and Err the
	// *introspect.TokenError saying why.
	Err error
	// Duration is the time the call took.
	Duration time.Duration
	// Keys and Skipped count the usable and the unusable keys of a key
	// set document.
	Keys, Skipped int
	// Active is the introspection answer's verdict.
	Active bool
}

// upstream starts the observation of an upstream call: the context for
// it and the function to call, once, with its outcome (never nil). The
// call keeps ctx's cancellation whatever context Events.Upstream returns,
// and a panic in the callback or in its done is logged and ignored: a
// metrics bug must not wedge a flight other requests wait on.
func (g *Guard) upstream(ctx context.Context, call UpstreamCall) (context.Context, func(UpstreamResult)) {
	if g.cfg.Events.Upstream == nil {
		return ctx, func(UpstreamResult) {}
	}
	start := time.Now()
	octx, done := g.callUpstream(ctx, call)
	c, cancel := context.WithCancel(octx)
	unregister := context.AfterFunc(ctx, cancel)
	return c, func(r UpstreamResult) {
		defer cancel()
		defer unregister()
		if done == nil {
			return
		}
		if r.Duration == 0 {
			r.Duration = time.Since(start)
		}
		defer g.recovered("Upstream's done")
		done(r)
	}
}

// callUpstream calls Events.Upstream, falling back to ctx and no done
// when it panics or returns no context.
func (g *Guard) callUpstream(ctx context.Context, call UpstreamCall) (octx context.Context, done func(UpstreamResult)) {
	defer func() {
		if octx == nil {
			octx, done = ctx, nil
		}
	}()
	defer g.recovered("Upstream")
	return g.cfg.Events.Upstream(ctx, call)
}

// decision tells Events.Decision of d.
func (g *Guard) decision(ctx context.Context, d Decision) {
	defer g.recovered("Decision")
	g.cfg.Events.Decision(ctx, d)
}

// recovered, deferred around an Events callback, logs its panic (at most
// once per callback per interval) and lets the Guard go on.
func (g *Guard) recovered(what string) {
	if v := recover(); v != nil {
		g.warnOnce("events:"+what, fmt.Errorf("tokenguard: Config.Events.%s panicked: %v", what, v))
	}
}

// detached is ctx's values (its trace) with the Guard's cancellation, for
// a call made on behalf of several requests; stop releases it.
func (g *Guard) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.cfg.Events.Upstream == nil {
		return g.ctx, func() {}
	}
	c, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(g.ctx, cancel)
	return c, func() { stop(); cancel() }
}

// statusOf is the HTTP status an upstream error carries, or 200 for
// none; 0 when the call got no answer.
func statusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var se *fetch.StatusError
	if errors.As(err, &se) {
		return se.StatusCode
	}
	var ue *introspect.UpstreamError
	if errors.As(err, &ue) {
		return ue.StatusCode
	}
	if errors.As(err, new(*introspect.TokenError)) {
		return http.StatusOK // an answer, refused for what it says
	}
	return 0
}

// keySetObserver reports the fetches of issuer id's key set, or is nil
// when nobody listens.
func (g *Guard) keySetObserver(id, url string) func(context.Context, jwks.Trigger) (context.Context, func(jwks.Fetch)) {
	if g.cfg.Events.Upstream == nil {
		return nil
	}
	return func(ctx context.Context, t jwks.Trigger) (context.Context, func(jwks.Fetch)) {
		octx, done := g.upstream(ctx, UpstreamCall{Kind: UpstreamKeys, Issuer: id, URL: url, Trigger: string(t)})
		return octx, func(f jwks.Fetch) {
			done(UpstreamResult{Status: f.Status, Err: f.Err, Duration: f.Duration, Keys: f.Keys, Skipped: f.Skipped})
		}
	}
}

// keySetLimited reports the unknown kids of issuer id that caused no
// fetch, or is nil when nobody listens.
func (g *Guard) keySetLimited(id string) func(context.Context) {
	f := g.cfg.Events.KeyRefetchLimited
	if f == nil {
		return nil
	}
	return func(ctx context.Context) {
		defer g.recovered("KeyRefetchLimited")
		f(ctx, id)
	}
}
