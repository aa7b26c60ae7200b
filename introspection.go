package tokenguard

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/tokenguard/tokenguard/cache"
	"github.com/tokenguard/tokenguard/internal/redact"
	"github.com/tokenguard/tokenguard/introspect"
)

// JWTIntrospection says when a JWT-shaped token is introspected.
type JWTIntrospection int

const (
	// IntrospectJWTNever validates JWTs locally only (the default).
	IntrospectJWTNever JWTIntrospection = iota
	// IntrospectJWTUnknownIssuer introspects a JWT-shaped token that
	// cannot be judged locally instead of rejecting it: one whose iss names
	// a trusted issuer that publishes no key set (its alg must still be an
	// asymmetric one: alg none and HMAC are refused first), or one the strict parser
	// refuses (a claim of the wrong type, say) whose iss, read leniently,
	// names a trusted issuer that introspects. It goes to that issuer only.
	// A JWT-shaped token whose iss is not a trusted issuer, or that has no
	// readable iss, is refused without a call: no server is asked about a
	// token it did not issue, and JWT-shaped tokens never take the opaque
	// route.
	IntrospectJWTUnknownIssuer
	// IntrospectJWTAlways introspects every JWT at its issuer after it
	// validated locally, so a revocation takes effect as soon as the
	// cached answer expires. New refuses it over an issuer that does not
	// introspect, unless that issuer's Introspect is IssuerIntrospectOff.
	IntrospectJWTAlways
)

// IntrospectionConfig configures the opaque-token path (RFC 7662) of one
// issuer, or, as Config.Introspection, the defaults and the credentials of
// the guard. Introspection is on when ClientID, BearerToken or AuthMethod
// is set.
//
// Credentials belong to one authorization server. Those of
// Config.Introspection (Endpoint, AuthMethod, ClientID, ClientSecret,
// BearerToken, TokenEndpoint, and with them SendTokenTypeHint,
// TokenPrefixes and SignedResponses) belong to one issuer: the primary one
// (Config.Issuer, or the one authorization server the resource metadata
// names), or, with no primary issuer, the only entry of Config.Issuers.
// New refuses every other shape (several authorization servers in the
// metadata, several entries, or the owner's entry with an Introspection of
// its own) rather than guess whose secret it is. Another issuer introspects
// only with its own TrustedIssuer.Introspection. MaxTTL, NegativeTTL,
// MaxConcurrent and JWTs are defaults for every issuer; CacheCapacity is
// guard-wide.
type IntrospectionConfig struct {
	// Endpoint is the introspection endpoint. It defaults to the
	// introspection_endpoint of the issuer's own metadata.
	Endpoint string
	// AuthMethod is "client_secret_basic", "client_secret_post", "bearer"
	// or "none". It defaults to what the issuer announces, preferring
	// client_secret_basic.
	AuthMethod string
	// ClientID and ClientSecret are this resource server's credentials at
	// the issuer.
	ClientID, ClientSecret string
	// BearerToken is a static token for AuthMethod "bearer". With "bearer"
	// and no BearerToken, a token is obtained with the client_credentials
	// grant from TokenEndpoint and refreshed before expiry.
	BearerToken string
	// TokenEndpoint is where AuthMethod "bearer" without a BearerToken
	// obtains its token. It defaults to the token_endpoint of the issuer's
	// own metadata.
	TokenEndpoint string
	// SendTokenTypeHint sends token_type_hint=access_token. Off by default:
	// some servers reject parameters they do not know.
	SendTokenTypeHint bool
	// TokenPrefixes route opaque tokens when several issuers introspect: a
	// token that starts with one of them (such as Ory's "ory_at_") goes to
	// this issuer, and this issuer is sent no other opaque token. A token
	// that starts with no issuer's prefix goes to the one issuer that
	// introspects without TokenPrefixes, or, when there is none, nowhere
	// (401, no call). New refuses two issuers that introspect without
	// prefixes, a prefix shorter than 3 characters, and a prefix that two
	// issuers share or that starts another issuer's. A prefix is a claim on
	// every token that starts with it: a random token of the issuer without
	// prefixes starts with a given n-character prefix once in 64^n, and then
	// goes to the prefix's issuer. Config.RouteOpaque cannot be set with
	// them. The zero value means none.
	TokenPrefixes []string
	// RequireAudience refuses an answer without aud (401 "token not meant
	// for this resource"). RFC 7662 makes aud optional, so by default an
	// answer without one counts as the issuer vouching for the token here;
	// servers that issue tokens without an audience unless a client asks
	// for one (fosite, panva's oidc-provider) then hand out tokens good at
	// every resource server. A default for every issuer.
	RequireAudience bool
	// SignedResponses asks for signed introspection answers (RFC 9701,
	// Accept: application/token-introspection+jwt) and verifies them with
	// the issuer's own key set; a plain JSON answer is then refused. The
	// issuer must publish a key set and ClientID must be set (the answer's
	// aud). Off by default.
	SignedResponses bool
	// JWTs says when JWT-shaped tokens are introspected. The zero value
	// means never. IntrospectJWTUnknownIssuer is guard-wide: it can be set
	// only in Config.Introspection.
	JWTs JWTIntrospection

	// CacheCapacity bounds the number of cached answers, across issuers.
	// Zero means 10,000. Only in Config.Introspection.
	CacheCapacity int
	// MaxTTL caps how long an active answer is cached; the token's exp caps
	// it further. Zero means 5 minutes. Revocation takes effect within it.
	MaxTTL time.Duration
	// NegativeTTL is how long an inactive answer is cached. Zero means 30s.
	NegativeTTL time.Duration
	// MaxConcurrent bounds introspection calls in flight at once to the
	// issuer; requests past it get 503. Zero means no bound.
	MaxConcurrent int
}

func (c IntrospectionConfig) enabled() bool {
	return c.ClientID != "" || c.BearerToken != "" || c.AuthMethod != ""
}

// maxRetryAfter bounds how long a server's Retry-After holds calls back.
const maxRetryAfter = 5 * time.Minute

// introspection is what the introspectors of one guard share: the answer
// cache, keyed by SHA-256 of the token and the issuer that answered, the
// call counter, and the tokens Guard.Forget was told of.
type introspection struct {
	cache *cache.LRU[*cached]
	calls atomic.Int64
	// forgotten marks, by tokenKey, the tokens forgotten lately, for
	// forgetTTL: no answer about one from before is used or kept.
	forgotten *cache.LRU[forgetMark]
	forgets   atomic.Uint64 // Forget calls so far; a mark's gen
	forgetTTL time.Duration
}

// forgetMark is when a token was forgotten: at (unix nanoseconds) for
// entries other replicas wrote, gen for this Guard's flights.
type forgetMark struct {
	at  int64
	gen uint64
}

func newIntrospection(plan *issuerPlan, capacity int, now func() time.Time) *introspection {
	// A mark must outlive every answer from before it: the longest an
	// answer is kept, a fleet entry's allowance for clock skew, and a
	// flight that started before the Forget (a few FetchTimeouts).
	longest := 5 * time.Minute
	specs := make([]*IntrospectionConfig, 0, len(plan.exact)+len(plan.patterns))
	for _, s := range plan.exact {
		specs = append(specs, s.introspection)
	}
	for _, p := range plan.patterns {
		specs = append(specs, p.spec.introspection)
	}
	for _, ic := range specs {
		if ic != nil {
			longest = max(longest, ic.MaxTTL, ic.NegativeTTL)
		}
	}
	return &introspection{
		cache:     cache.New[*cached](cache.Options{Capacity: capacity, Now: now}),
		forgotten: cache.New[forgetMark](cache.Options{Capacity: capacity, Now: now}),
		forgetTTL: longest + fleetSkew + time.Minute,
	}
}

// forget marks the token whose tokenKey is hash as forgotten at now.
func (s *introspection) forget(ctx context.Context, hash string, now time.Time) {
	gen := s.forgets.Add(1)
	s.forgotten.Set(ctx, hash, forgetMark{at: now.UnixNano(), gen: gen}, s.forgetTTL)
}

// forgottenAt reports whether the token was forgotten at or after at
// (unix nanoseconds, an entry's time of writing).
func (s *introspection) forgottenAt(hash string, at int64) bool {
	if s.forgets.Load() == 0 {
		return false
	}
	m, ok := s.forgotten.Get(context.Background(), hash)
	return ok && at <= m.at
}

// forgottenSince reports whether the token was forgotten after gen, the
// forgets count a flight started at.
func (s *introspection) forgottenSince(hash string, gen uint64) bool {
	if s.forgets.Load() == gen {
		return false
	}
	m, ok := s.forgotten.Get(context.Background(), hash)
	return ok && m.gen > gen
}

// introspector is one issuer's opaque-token path: a client bound to that
// issuer's endpoint and credentials, and a flight group so that concurrent
// requests with one uncached token make one call.
type introspector struct {
	issuer      string  // the issuer whose endpoint this is; answers are credited to it
	owner       *issuer // that issuer, whose shape and audiences apply
	client      *introspect.Client
	endpoint    string // and clientID: whose calls a fleet's budget counts
	clientID    string
	shared      *introspection
	limits      *introspectLimits
	flights     singleflight.Group
	maxTTL      time.Duration
	negativeTTL time.Duration
	leeway      time.Duration // the issuer's, on exp and nbf as for its JWTs
	// requireAudience: an answer must have an audience (RequireAudience),
	// checked here when the issuer's shape reads it from another claim.
	requireAudience bool
	now             func() time.Time
}

// introspectLimits bound the calls to one server: an exact issuer's, or
// every tenant's of a pattern (one server, usually), so neither evicting a
// tenant nor adding tenants loosens them.
type introspectLimits struct {
	sem *semaphore.Weighted // nil: no bound
	// blockedUntil (unix nanoseconds) holds calls back after the server
	// asked for it with 429/503 Retry-After, so a burst of new tokens does
	// not keep hitting a server that is already refusing.
	blockedUntil atomic.Int64
	breaker      breaker
	probe        requestProbe
}

// breaker stops calling an endpoint that keeps failing without saying
// when to come back (5xx without Retry-After, timeouts, refused
// connections, refused credentials, malformed answers): after
// breakerThreshold failures in a row it opens for a backoff, doubled (up to
// breakerMaxBackoff, with jitter) each time a probe fails; then one call
// probes it, and a success closes it. While open, requests get 503 with
// the time left as Retry-After. Only the endpoint's own failures count: a
// 4xx about one request (a client's token) or a 429 with Retry-After (held
// back by blockedUntil instead) leaves it as it is, so no client can open
// it for everyone.
type breaker struct {
	mu        sync.Mutex
	gen       uint64 // advances at every open and close: outcomes of calls from before are ignored
	failures  int
	backoff   time.Duration
	openUntil time.Time
	probing   bool
}

// ticket is what allow hands a call, for done.
type ticket struct {
	gen   uint64
	probe bool
}

// outcome is what a call tells the breaker.
type outcome int

const (
	callOK      outcome = iota // the endpoint answered (any verdict)
	callFailed                 // the endpoint failed
	callNeutral                // says nothing about the endpoint's health
)

const (
	breakerThreshold  = 5
	breakerMinBackoff = time.Second
	breakerMaxBackoff = time.Minute
)

// allow reports whether a call may be made now, or how long to wait.
func (b *breaker) allow(now time.Time) (ticket, bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < breakerThreshold {
		return ticket{gen: b.gen}, true, 0
	}
	if wait := b.openUntil.Sub(now); wait > 0 {
		return ticket{}, false, wait
	}
	if b.probing {
		return ticket{}, false, breakerMinBackoff
	}
	b.probing = true
	return ticket{gen: b.gen, probe: true}, true, 0
}

// breakerChange is what a call's outcome did to the breaker.
type breakerChange int

const (
	breakerSame   breakerChange = iota
	breakerOpened               // suspended after failures in a row
	breakerClosed               // a probe got through: calls resume
)

// done records the outcome of a call that allow let through.
func (b *breaker) done(t ticket, now time.Time, o outcome) breakerChange {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.probe {
		b.probing = false
	}
	if t.gen != b.gen || o == callNeutral && !t.probe {
		// A call from before the last open or close: the state it would
		// change is gone. (A burst of failures in flight when the breaker
		// opened must not double its backoff once per call.)
		return breakerSame
	}
	switch {
	case o == callOK:
		was := b.failures >= breakerThreshold
		b.failures, b.backoff = 0, 0
		b.gen++
		if was {
			return breakerClosed
		}
	case o == callFailed && t.probe:
		b.open(now, min(2*b.backoff, breakerMaxBackoff))
	case o == callFailed:
		b.failures++
		if b.failures == breakerThreshold {
			b.open(now, breakerMinBackoff)
			return breakerOpened
		}
	}
	return breakerSame
	// A neutral probe leaves the breaker open as it was; the next request
	// probes again.
}

func (b *breaker) open(now time.Time, backoff time.Duration) {
	b.failures = breakerThreshold
	b.backoff = backoff
	// ±20 % so that replicas which failed together do not probe together.
	jitter := time.Duration(rand.Int64N(int64(backoff)*2/5+1)) - backoff/5
	b.openUntil = now.Add(backoff + jitter)
	b.gen++
}

// callOutcome says what an introspection result tells the breaker.
func callOutcome(err error) outcome {
	var ue *introspect.UpstreamError
	if !errors.As(err, &ue) {
		return callOK // an answer, or a TokenError: the endpoint works
	}
	switch {
	case ue.StatusCode == 429 && ue.RetryAfter > 0:
		return callNeutral // blockedUntil holds calls back as asked
	case ue.StatusCode >= 400 && ue.StatusCode < 500 && ue.StatusCode != 401 && ue.StatusCode != 403:
		return callNeutral // about this request, which a client chose
	}
	return callFailed
}

// requestProbe remembers whether the endpoint answers a well-formed
// request, so that a 400 can be told apart: about this token (the
// server's verdict: the token is refused) or about our request (an outage
// of ours: 503). A probe is one introspection of a random token; its
// verdict is kept for probeTTL.
type requestProbe struct {
	mu      sync.Mutex
	checked time.Time
	works   bool
	flight  singleflight.Group
}

const probeTTL = time.Minute

// requestsWork reports whether the endpoint answers a well-formed request
// now, probing at most once per probeTTL.
func (in *introspector) requestsWork(ctx context.Context, g *Guard) bool {
	p := &in.limits.probe
	now := in.now()
	p.mu.Lock()
	if !p.checked.IsZero() && now.Sub(p.checked) < probeTTL {
		works := p.works
		p.mu.Unlock()
		return works
	}
	p.mu.Unlock()
	v, _, _ := p.flight.Do("probe", func() (any, error) {
		b := make([]byte, 32)
		_, _ = crand.Read(b)
		in.shared.calls.Add(1)
		octx, done := g.upstream(ctx, UpstreamCall{Kind: UpstreamIntrospection, Issuer: in.issuer, URL: in.endpoint, Trigger: "probe"})
		res, err := in.client.Introspect(octx, "tokenguard-probe-"+base64.RawURLEncoding.EncodeToString(b))
		done(UpstreamResult{Status: statusOf(err), Err: err, Active: err == nil && res != nil && res.Active})
		var ue *introspect.UpstreamError
		works := !errors.As(err, &ue)
		p.mu.Lock()
		p.checked, p.works = in.now(), works
		p.mu.Unlock()
		return works, nil
	})
	return v.(bool)
}

func newIntrospectLimits(maxConcurrent int) *introspectLimits {
	l := &introspectLimits{}
	if maxConcurrent > 0 {
		l.sem = semaphore.NewWeighted(int64(maxConcurrent))
	}
	return l
}

// cached is one introspection answer; p is nil for a token refused,
// with reason (the client's description) when it is not "not active".
type cached struct {
	p      *Principal
	reason string
	// unavailable marks a token the endpoint answered 400 while a probe
	// failed too: 503 for badRequestHold, not a verdict.
	unavailable bool
}

// badRequestHold is how long a token answered 400 (with a failing probe)
// gets 503 without another call.
const badRequestHold = 5 * time.Second

// newIntrospector builds the introspection client of iss from ic and the
// issuer's own metadata: nothing of another issuer's is used.
func (g *Guard) newIntrospector(iss *issuer, spec issuerSpec) (*introspector, error) {
	ic := spec.introspection
	cfg := introspect.Config{
		Endpoint:          ic.Endpoint,
		AuthMethod:        introspect.AuthMethod(ic.AuthMethod),
		ClientID:          ic.ClientID,
		ClientSecret:      ic.ClientSecret,
		BearerToken:       ic.BearerToken,
		SendTokenTypeHint: ic.SendTokenTypeHint,
		// An answer speaks for the issuer whose endpoint gave it, or for
		// nobody.
		TrustedIssuers:    []string{iss.id},
		HTTPClient:        g.cfg.HTTPClient,
		Timeout:           g.cfg.FetchTimeout,
		InsecureAllowHTTP: g.cfg.InsecureAllowHTTP,
		Now:               g.cfg.Now,
		Leeway:            iss.leeway,
	}
	if !iss.skipAudience {
		cfg.Audiences = iss.audiences
		// With an AudienceClaim, an answer without aud may have its
		// audience elsewhere: required after the shape has read it.
		cfg.RequireAudience = ic.RequireAudience && iss.shape.AudienceClaim == ""
	}
	if md := iss.meta; md != nil {
		if cfg.Endpoint == "" {
			cfg.Endpoint = md.IntrospectionEndpoint
		}
		cfg.SupportedAuthMethods = md.IntrospectionEndpointAuthMethodsSupported
		if len(cfg.SupportedAuthMethods) == 0 {
			cfg.SupportedAuthMethods = md.TokenEndpointAuthMethodsSupported
		}
		if cfg.AuthMethod == introspect.AuthBearer && cfg.BearerToken == "" && ic.TokenEndpoint == "" {
			cfg.TokenEndpoint = md.TokenEndpoint
		}
	}
	if ic.TokenEndpoint != "" {
		cfg.TokenEndpoint = ic.TokenEndpoint
	}
	if cfg.Endpoint == "" {
		return nil, fmt.Errorf("tokenguard: issuer %s introspects but announces no introspection_endpoint: set Endpoint in its introspection config", iss.id)
	}
	if ic.SignedResponses {
		if iss.keys == nil {
			return nil, fmt.Errorf("tokenguard: issuer %s: SignedResponses needs the issuer's key set, and it publishes none", iss.id)
		}
		cfg.ResponseKeys = iss.keys
		cfg.ResponseIssuer = iss.id
		for alg := range iss.algs {
			cfg.ResponseAlgorithms = append(cfg.ResponseAlgorithms, alg)
		}
	}
	client, err := introspect.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("tokenguard: issuer %s: %w", iss.id, err)
	}
	in := &introspector{
		issuer:      iss.id,
		owner:       iss,
		client:      client,
		endpoint:    cfg.Endpoint,
		clientID:    ic.ClientID,
		shared:      g.introspection,
		maxTTL:      ic.MaxTTL,
		negativeTTL: ic.NegativeTTL,
		leeway:      iss.leeway,
		now:         g.now,

		requireAudience: ic.RequireAudience && !iss.skipAudience && iss.shape.AudienceClaim != "",
	}
	if in.maxTTL <= 0 {
		in.maxTTL = 5 * time.Minute
	}
	if in.negativeTTL <= 0 {
		in.negativeTTL = 30 * time.Second
	}
	switch {
	case spec.limits != nil:
		in.limits = spec.limits
	case spec.tenant && g.dynamic != nil:
		in.limits = g.dynamic.limitsFor(cfg.Endpoint, ic.MaxConcurrent)
	default:
		in.limits = newIntrospectLimits(ic.MaxConcurrent)
	}
	return in, nil
}

// introspect judges an opaque (or, by policy, JWT) token at in's issuer,
// through the cache; hash is tokenKey(token).
// path, unless nil, is set to how the answer was had.
func (g *Guard) introspect(ctx context.Context, in *introspector, token string, path *TokenPath) (*Principal, *Error) {
	// The issuer is part of the key: an answer one issuer gave is never
	// taken for another's.
	hash := tokenKey(token)
	key := hash + in.issuer
	if c, ok := in.shared.cache.Get(ctx, key); ok {
		if path != nil {
			*path = PathOpaqueCached
		}
		return in.judge(c)
	}
	if path != nil {
		*path = PathOpaque
	}
	if until := in.limits.blockedUntil.Load(); until != 0 {
		if wait := time.Unix(0, until).Sub(in.now()); wait > 0 {
			return nil, errUnavailable(wait, fmt.Errorf("introspection at %s held back: the authorization server asked to retry later", in.issuer))
		}
	}
	// The flight runs on the guard's context, not the first caller's, so
	// one caller giving up does not fail the others; each waits on its own.
	ch := in.flights.DoChan(key, func() (any, error) {
		fctx, stop := g.detached(ctx) // the first caller's trace, the Guard's lifetime
		defer stop()
		gen := in.shared.forgets.Load()
		v, err := in.call(fctx, g, key, hash, token, gen)
		if in.shared.forgottenSince(hash, gen) {
			// Forgotten while in flight: what the flight cached may be
			// from before the revocation. (Forget marks, then drops; this
			// caches, then looks: one of the two sees the other.)
			in.shared.cache.Delete(g.ctx, key)
		}
		return v, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			// Causes built here quote the answer's values, which a server
			// may fill with the token.
			return nil, scrub(res.Err.(*Error), token)
		}
		return in.judge(res.Val.(*cached))
	case <-ctx.Done():
		return nil, errUnavailable(time.Second, fmt.Errorf("waiting for introspection at %s: %w", in.issuer, ctx.Err()))
	}
}

// call makes one introspection request (or, in a fleet, takes another
// replica's answer) and caches a definite answer. Its error is always an
// *Error. gen is the count of forgets it started at: an answer it gets
// after the token was forgotten is not shared with the fleet.
func (in *introspector) call(ctx context.Context, g *Guard, key, hash, token string, gen uint64) (any, error) {
	c := in.shared.cache
	// A flight that started just after another one cached the answer must
	// not call again.
	if v, ok := c.Get(ctx, key); ok {
		return v, nil
	}
	fr := g.newFleetRun(in, hash)
	if fr != nil {
		if v, err, ok := fr.lookup(ctx, key, token); ok {
			return v, err
		}
	}
	if sem := in.limits.sem; sem != nil {
		if !sem.TryAcquire(1) {
			return nil, errUnavailable(time.Second, fmt.Errorf("introspection concurrency limit of %s reached", in.issuer))
		}
		defer sem.Release(1)
	}
	br := &in.limits.breaker
	tk, ok, wait := br.allow(in.now())
	if !ok {
		return nil, errUnavailable(wait, fmt.Errorf("introspection at %s suspended after %d failures in a row; next try in %s", in.issuer, breakerThreshold, wait.Round(time.Millisecond)))
	}
	leased := false
	if fr != nil {
		if e := fr.held(ctx); e != nil {
			br.done(tk, in.now(), callNeutral)
			return nil, e
		}
		var v any
		var err error
		var done bool
		v, err, done, leased = fr.coalesce(ctx, key, token)
		if done {
			br.done(tk, in.now(), callNeutral) // no call was made
			return v, err
		}
		if leased {
			defer fr.release()
		}
		if e := fr.take(ctx); e != nil {
			br.done(tk, in.now(), callNeutral)
			if leased {
				// The replicas waiting on this lease are told now, not
				// after LeaseTTL.
				fr.noAnswer(ctx, e.RetryAfter)
			}
			return nil, e
		}
	}
	// share stores what the server said for the fleet, unless the token
	// was forgotten meanwhile.
	share := func(res *introspect.Result, reason string) {
		switch {
		case fr == nil:
		case !in.shared.forgottenSince(hash, gen):
			fr.keep(ctx, res, reason)
		case leased:
			fr.noAnswer(ctx, 0)
		}
	}
	in.shared.calls.Add(1)
	octx, done := g.upstream(ctx, UpstreamCall{Kind: UpstreamIntrospection, Issuer: in.issuer, URL: in.endpoint})
	res, err := in.client.Introspect(octx, token)
	done(UpstreamResult{Status: statusOf(err), Err: err, Active: err == nil && res != nil && res.Active || errors.As(err, new(*introspect.TokenError))})
	var ue *introspect.UpstreamError
	if errors.As(err, &ue) && ue.StatusCode == 400 && in.requestsWork(ctx, g) {
		// The endpoint answers a well-formed request, so this 400 is
		// about the token: a verdict, cached, and not a client's way to
		// make us answer 503 at will.
		g.breakerEvent(ctx, in, br.done(tk, in.now(), callOK))
		c.Set(ctx, key, &cached{}, in.negativeTTL)
		share(nil, "token is not active")
		return nil, errInvalidToken("token is not active", fmt.Errorf("introspection at %s: 400 %s for this token, while the endpoint answers other requests", in.issuer, ue.ErrorCode))
	}
	g.breakerEvent(ctx, in, br.done(tk, in.now(), callOutcome(err)))
	if ue != nil && ue.StatusCode == 400 {
		// A 400 for this token and for the probe: our request may be at
		// fault, so 503, not a verdict; remembered briefly so that a
		// client repeating the token does not call upstream each time.
		c.Set(ctx, key, &cached{unavailable: true}, badRequestHold)
	}
	if err == nil || errors.As(err, new(*introspect.TokenError)) {
		reason := ""
		if te := (*introspect.TokenError)(nil); errors.As(err, &te) {
			reason = te.Reason
		}
		share(res, reason)
	} else if fr != nil {
		retry := upstreamRetry(err)
		if retry > 0 {
			fr.hold(in.now().Add(retry))
		}
		if leased {
			fr.noAnswer(ctx, retry)
		}
	}
	return in.decide(ctx, g, key, token, res, err, time.Time{})
}

// upstreamRetry is the hold-back a 429 or 503 with Retry-After asks for.
func upstreamRetry(err error) time.Duration {
	var ue *introspect.UpstreamError
	if errors.As(err, &ue) && ue.RetryAfter > 0 && (ue.StatusCode == 429 || ue.StatusCode == 503) {
		return min(ue.RetryAfter, maxRetryAfter)
	}
	return 0
}

// keep caches v at key for ttl, and no later than until when it is set
// (the deadline of an answer the fleet kept: read near its end, it must
// not live on here for another TTL).
func (in *introspector) keep(ctx context.Context, key string, v *cached, ttl time.Duration, until time.Time) {
	if !until.IsZero() {
		ttl = min(ttl, until.Sub(in.now()))
	}
	if ttl > 0 {
		in.shared.cache.Set(ctx, key, v, ttl)
	}
}

// decide turns what the server answered (res and err of Introspect, or of
// Judge for an answer the fleet kept until until) into the outcome, and
// caches a definite one.
func (in *introspector) decide(ctx context.Context, g *Guard, key, token string, res *introspect.Result, err error, until time.Time) (any, error) {
	if err != nil {
		var ue *introspect.UpstreamError
		errors.As(err, &ue)
		var te *introspect.TokenError
		if errors.As(err, &te) {
			// A definite "not acceptable here": cached like an inactive
			// answer, with its reason, so a repeat gets the same answer.
			in.keep(ctx, key, &cached{reason: te.Reason}, in.negativeTTL, until)
			return nil, errInvalidToken(te.Reason, fmt.Errorf("introspection at %s: %w", in.issuer, err))
		}
		retry := time.Duration(0)
		if ue != nil {
			// A server's hint is honoured up to a bound: a typo'd or hostile
			// Retry-After must not switch introspection off for days.
			retry = min(ue.RetryAfter, maxRetryAfter)
			if retry > 0 && (ue.StatusCode == 429 || ue.StatusCode == 503) {
				in.limits.blockedUntil.Store(in.now().Add(retry).UnixNano())
			}
		}
		if retry <= 0 {
			retry = 5 * time.Second
		}
		return nil, errUnavailable(retry, err)
	}
	if !res.Active {
		in.keep(ctx, key, &cached{}, in.negativeTTL, until)
		return &cached{}, nil
	}
	var binding Binding
	if len(res.Confirmation) > 0 {
		var e *Error
		if binding, e = g.bindingOf(res.Confirmation, "introspection at "+in.issuer+": cnf"); e != nil {
			in.keep(ctx, key, &cached{reason: e.Description}, in.negativeTTL, until)
			return nil, e
		}
	}
	p := &Principal{
		Subject:  res.Subject,
		ClientID: res.ClientID,
		// The client checked that iss is absent or this issuer: either
		// way, this issuer vouched for the token.
		Issuer:   in.issuer,
		Audience: res.Audience,
		Scopes:   g.scopesFrom(res.Raw, mergeScopes(res.Scope, nil)),
		Expiry:   res.Expiry,
		IssuedAt: res.IssuedAt,
		TokenID:  res.TokenID,
		Kind:     KindOpaque,
		Binding:  binding,
		claims:   string(res.Raw),
		guard:    g,
	}
	if e := in.owner.applyShape(p, res.Raw, false); e != nil {
		in.keep(ctx, key, &cached{reason: e.Description}, in.negativeTTL, until)
		return nil, e
	}
	if res.Audience == nil && in.requireAudience && len(p.Audience) == 0 {
		in.keep(ctx, key, &cached{reason: "token not meant for this resource"}, in.negativeTTL, until)
		return nil, errInvalidToken("token not meant for this resource", fmt.Errorf("introspection at %s: the answer has neither aud nor %s", in.issuer, in.owner.shape.AudienceClaim))
	}
	if res.Audience == nil && len(p.Audience) > 0 && !in.owner.acceptsAudience(p.Audience) {
		// No aud, but the shape says where the audience is: checked there.
		in.keep(ctx, key, &cached{reason: "token not meant for this resource"}, in.negativeTTL, until)
		return nil, errInvalidToken("token not meant for this resource", fmt.Errorf("introspection at %s: %s %s lacks %s", in.issuer, in.owner.shape.AudienceClaim, quote(strings.Join(p.Audience, ",")), quote(strings.Join(in.owner.audiences, " or "))))
	}
	// Cached until exp (at most MaxTTL), plus NegativeTTL past exp: a
	// client that keeps sending a token after it expired is then told so
	// from the cache, not with another call. judge checks exp on every hit.
	// Compared before adding: an exp centuries away saturates Sub, and
	// adding to that would overflow to a negative TTL (never cached).
	ttl := in.maxTTL
	if !p.Expiry.IsZero() {
		if left := p.Expiry.Add(in.leeway).Sub(in.now()); left < ttl {
			ttl = left + in.negativeTTL
		}
	}
	// The server chose the scopes, and may have put the token in them:
	// a 403's record then does not name them. Checked on the record's own
	// text, which is bounded (loggedScopes), once per answer. A JWT's own
	// claims cannot hold its signature, so only answers are checked.
	p.scopesHoldToken = redact.Leaks(loggedScopes(p.Scopes), token)
	v := &cached{p: p}
	in.keep(ctx, key, v, ttl, until)
	return v, nil
}

// scrub drops e's cause when its text holds the token, or a piece of it.
func scrub(e *Error, token string) *Error {
	if e == nil || e.Err == nil || !redact.Leaks(e.Err.Error(), token) {
		return e
	}
	cp := *e
	cp.Err = errors.New(redact.Withheld)
	return &cp
}

// judge turns a cached answer into the request's outcome. exp is checked
// again on every hit: the entry may outlive the token by a clock tick.
func (in *introspector) judge(c *cached) (*Principal, *Error) {
	if c.unavailable {
		return nil, errUnavailable(badRequestHold, errors.New("the introspection endpoint answered 400 for this token and for a probe: our requests may be at fault"))
	}
	if c.p == nil {
		if c.reason != "" {
			return nil, errInvalidToken(c.reason, nil)
		}
		return nil, errInvalidToken("token is not active", nil)
	}
	if !c.p.Expiry.IsZero() && !in.now().Before(c.p.Expiry.Add(in.leeway)) {
		return nil, errInvalidToken("token expired", nil)
	}
	// A copy per request: the cached one is shared by every request that
	// sends the token, and a handler may change what it is given.
	return c.p.clone(), nil
}

// IntrospectionStats reports the opaque-token path's counters.
type IntrospectionStats struct {
	// Calls is the number of requests made to introspection endpoints.
	Calls int64
	// Hits, Misses and Evictions are the answer cache's counters.
	Hits, Misses, Evictions uint64
	// Entries is the number of answers cached now.
	Entries int
}

// IntrospectionStats returns the counters of the opaque-token path, over
// every issuer; zero when no issuer introspects.
func (g *Guard) IntrospectionStats() IntrospectionStats {
	if in := g.started(); in != nil {
		return in.IntrospectionStats()
	}
	in := g.introspection
	if in == nil {
		return IntrospectionStats{}
	}
	st := in.cache.Stats()
	return IntrospectionStats{Calls: in.calls.Load(), Hits: st.Hits, Misses: st.Misses, Evictions: st.Evictions, Entries: in.cache.Len()}
}

// breakerEvent tells Events.Breaker of a change of in's breaker.
func (g *Guard) breakerEvent(ctx context.Context, in *introspector, c breakerChange) {
	if c == breakerSame || g.cfg.Events.Breaker == nil {
		return
	}
	defer g.recovered("Breaker")
	g.cfg.Events.Breaker(ctx, in.issuer, c == breakerOpened)
}
