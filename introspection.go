package tokenguard

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/tokenguard/tokenguard/cache"
	"github.com/tokenguard/tokenguard/discovery"
	"github.com/tokenguard/tokenguard/introspect"
)

// JWTIntrospection says when a JWT-shaped token is introspected.
type JWTIntrospection int

const (
	// IntrospectJWTNever validates JWTs locally only (the default).
	IntrospectJWTNever JWTIntrospection = iota
	// IntrospectJWTUnknownIssuer introspects a JWT whose iss is not a
	// trusted issuer, or that cannot be parsed, instead of rejecting it.
	IntrospectJWTUnknownIssuer
	// IntrospectJWTAlways introspects every JWT after it validated locally,
	// so a revocation takes effect as soon as the cached answer expires.
	IntrospectJWTAlways
)

// IntrospectionConfig configures the opaque-token path (RFC 7662).
// Introspection is on when ClientID, BearerToken or AuthMethod is set.
type IntrospectionConfig struct {
	// Endpoint is the introspection endpoint. It defaults to the
	// introspection_endpoint of the first trusted authorization server that
	// announces one.
	Endpoint string
	// AuthMethod is "client_secret_basic", "client_secret_post", "bearer"
	// or "none". It defaults to what the server announces, preferring
	// client_secret_basic.
	AuthMethod string
	// ClientID and ClientSecret are this resource server's credentials.
	ClientID, ClientSecret string
	// BearerToken is a static token for AuthMethod "bearer". With "bearer"
	// and no BearerToken, a token is obtained with the client_credentials
	// grant from the server's token_endpoint and refreshed before expiry.
	BearerToken string
	// SendTokenTypeHint sends token_type_hint=access_token. Off by default:
	// some servers reject parameters they do not know.
	SendTokenTypeHint bool
	// JWTs says when JWT-shaped tokens are introspected. The zero value
	// means never.
	JWTs JWTIntrospection

	// CacheCapacity bounds the number of cached answers. Zero means 10,000.
	CacheCapacity int
	// MaxTTL caps how long an active answer is cached; the token's exp caps
	// it further. Zero means 5 minutes. Revocation takes effect within it.
	MaxTTL time.Duration
	// NegativeTTL is how long an inactive answer is cached. Zero means 30s.
	NegativeTTL time.Duration
	// MaxConcurrent bounds introspection calls in flight at once; requests
	// past it get 503. Zero means no bound.
	MaxConcurrent int
}

func (c IntrospectionConfig) enabled() bool {
	return c.ClientID != "" || c.BearerToken != "" || c.AuthMethod != ""
}

// maxRetryAfter bounds how long a server's Retry-After holds calls back.
const maxRetryAfter = 5 * time.Minute

// introspector is the guard's opaque-token path: a client, a cache keyed
// by SHA-256 of the token, and a flight group so that concurrent requests
// with one uncached token make one call.
type introspector struct {
	client      *introspect.Client
	cache       *cache.LRU[*cached]
	flights     singleflight.Group
	sem         *semaphore.Weighted
	maxTTL      time.Duration
	negativeTTL time.Duration
	now         func() time.Time
	issuer      string // the issuer whose endpoint this is
	// blockedUntil (unix nanoseconds) holds calls back after the server
	// asked for it with 429/503 Retry-After, so a burst of new tokens does
	// not keep hitting a server that is already refusing.
	blockedUntil atomic.Int64
	calls        atomic.Int64
}

// cached is one introspection answer; p is nil for an inactive token.
type cached struct {
	p *Principal
}

func newIntrospector(g *Guard, ic IntrospectionConfig, md *discovery.ServerMetadata, issuers []string) (*introspector, error) {
	cfg := introspect.Config{
		Endpoint:          ic.Endpoint,
		AuthMethod:        introspect.AuthMethod(ic.AuthMethod),
		ClientID:          ic.ClientID,
		ClientSecret:      ic.ClientSecret,
		BearerToken:       ic.BearerToken,
		SendTokenTypeHint: ic.SendTokenTypeHint,
		TrustedIssuers:    issuers,
		Audience:          g.audience,
		HTTPClient:        g.cfg.HTTPClient,
		Timeout:           g.cfg.FetchTimeout,
		InsecureAllowHTTP: g.cfg.InsecureAllowHTTP,
		Now:               g.cfg.Now,
	}
	if g.cfg.InsecureSkipAudienceCheck {
		cfg.Audience = ""
	}
	if md != nil {
		if cfg.Endpoint == "" {
			cfg.Endpoint = md.IntrospectionEndpoint
		}
		cfg.SupportedAuthMethods = md.IntrospectionEndpointAuthMethodsSupported
		if len(cfg.SupportedAuthMethods) == 0 {
			cfg.SupportedAuthMethods = md.TokenEndpointAuthMethodsSupported
		}
		if cfg.AuthMethod == introspect.AuthBearer && cfg.BearerToken == "" {
			cfg.TokenEndpoint = md.TokenEndpoint
		}
	}
	if cfg.Endpoint == "" {
		return nil, errors.New("tokenguard: introspection is configured but no endpoint is known: set Introspection.Endpoint")
	}
	client, err := introspect.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("tokenguard: %w", err)
	}
	in := &introspector{
		client:      client,
		cache:       cache.New[*cached](cache.Options{Capacity: ic.CacheCapacity, Now: g.now}),
		maxTTL:      ic.MaxTTL,
		negativeTTL: ic.NegativeTTL,
		now:         g.now,
	}
	if md != nil {
		in.issuer = md.Issuer
	}
	if in.maxTTL <= 0 {
		in.maxTTL = 5 * time.Minute
	}
	if in.negativeTTL <= 0 {
		in.negativeTTL = 30 * time.Second
	}
	if ic.MaxConcurrent > 0 {
		in.sem = semaphore.NewWeighted(int64(ic.MaxConcurrent))
	}
	return in, nil
}

// introspect judges an opaque (or, by policy, JWT) token through the
// cache; key is tokenKey(token).
func (g *Guard) introspect(ctx context.Context, token, key string) (*Principal, *Error) {
	in := g.introspector
	if c, ok := in.cache.Get(ctx, key); ok {
		return in.judge(c)
	}
	if until := in.blockedUntil.Load(); until != 0 {
		if wait := time.Unix(0, until).Sub(in.now()); wait > 0 {
			return nil, errUnavailable(wait, errors.New("introspection held back: the authorization server asked to retry later"))
		}
	}
	// The flight runs on the guard's context, not the first caller's, so
	// one caller giving up does not fail the others; each waits on its own.
	ch := in.flights.DoChan(key, func() (any, error) {
		return in.call(g.ctx, g, key, token)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err.(*Error)
		}
		return in.judge(res.Val.(*cached))
	case <-ctx.Done():
		return nil, errUnavailable(time.Second, fmt.Errorf("waiting for introspection: %w", ctx.Err()))
	}
}

// call makes one introspection request and caches a definite answer. Its
// error is always an *Error.
func (in *introspector) call(ctx context.Context, g *Guard, key, token string) (any, error) {
	// A flight that started just after another one cached the answer must
	// not call again.
	if c, ok := in.cache.Get(ctx, key); ok {
		return c, nil
	}
	if in.sem != nil {
		if !in.sem.TryAcquire(1) {
			return nil, errUnavailable(time.Second, errors.New("introspection concurrency limit reached"))
		}
		defer in.sem.Release(1)
	}
	in.calls.Add(1)
	res, err := in.client.Introspect(ctx, token)
	if err != nil {
		var te *introspect.TokenError
		if errors.As(err, &te) {
			// A definite "not acceptable here": cache it like an inactive answer.
			in.cache.Set(ctx, key, &cached{}, in.negativeTTL)
			return nil, errInvalidToken(te.Reason, err)
		}
		var ue *introspect.UpstreamError
		retry := time.Duration(0)
		if errors.As(err, &ue) {
			// A server's hint is honoured up to a bound: a typo'd or hostile
			// Retry-After must not switch introspection off for days.
			retry = min(ue.RetryAfter, maxRetryAfter)
			if retry > 0 && (ue.StatusCode == 429 || ue.StatusCode == 503) {
				in.blockedUntil.Store(in.now().Add(retry).UnixNano())
			}
		}
		if retry <= 0 {
			retry = 5 * time.Second
		}
		return nil, errUnavailable(retry, err)
	}
	if !res.Active {
		in.cache.Set(ctx, key, &cached{}, in.negativeTTL)
		return &cached{}, nil
	}
	p := &Principal{
		Subject:  res.Subject,
		ClientID: res.ClientID,
		Issuer:   res.Issuer,
		Audience: res.Audience,
		Scopes:   g.scopesFrom(res.Raw, mergeScopes(res.Scope, nil)),
		Expiry:   res.Expiry,
		IssuedAt: res.IssuedAt,
		TokenID:  res.TokenID,
		Kind:     KindOpaque,
		claims:   res.Raw,
		guard:    g,
	}
	if p.Issuer == "" {
		p.Issuer = in.issuer
	}
	// Cached until exp (at most MaxTTL), plus NegativeTTL past exp: a
	// client that keeps sending a token after it expired is then told so
	// from the cache, not with another call. judge checks exp on every hit.
	ttl := in.maxTTL
	if !p.Expiry.IsZero() {
		ttl = min(ttl, p.Expiry.Sub(in.now())+in.negativeTTL)
	}
	c := &cached{p: p}
	in.cache.Set(ctx, key, c, ttl)
	return c, nil
}

// judge turns a cached answer into the request's outcome. exp is checked
// again on every hit: the entry may outlive the token by a clock tick.
func (in *introspector) judge(c *cached) (*Principal, *Error) {
	if c.p == nil {
		return nil, errInvalidToken("token is not active", nil)
	}
	if !c.p.Expiry.IsZero() && !in.now().Before(c.p.Expiry) {
		return nil, errInvalidToken("token expired", nil)
	}
	// A copy per request: the cached one is shared by every request that
	// sends the token, and a handler may change what it is given.
	return c.p.clone(), nil
}

// IntrospectionStats reports the opaque-token path's counters.
type IntrospectionStats struct {
	// Calls is the number of requests made to the introspection endpoint.
	Calls int64
	// Hits, Misses and Evictions are the answer cache's counters.
	Hits, Misses, Evictions uint64
	// Entries is the number of answers cached now.
	Entries int
}

// IntrospectionStats returns the counters of the opaque-token path; zero
// when introspection is off.
func (g *Guard) IntrospectionStats() IntrospectionStats {
	in := g.introspector
	if in == nil {
		return IntrospectionStats{}
	}
	st := in.cache.Stats()
	return IntrospectionStats{Calls: in.calls.Load(), Hits: st.Hits, Misses: st.Misses, Evictions: st.Evictions, Entries: in.cache.Len()}
}
