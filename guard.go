// Package tokenguard protects HTTP APIs with OAuth 2.0 bearer tokens.
//
// A Guard discovers its authorization servers from the resource's RFC 9728
// metadata (or takes them from Config), keeps each server's JWKS cached and
// fresh, and validates JWT access tokens locally (RFC 9068, RFC 8725). On
// failure it answers with the RFC 6750 challenge the client needs.
package tokenguard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tokenguard/tokenguard/discovery"
	"github.com/tokenguard/tokenguard/internal/fetch"
	"github.com/tokenguard/tokenguard/jwks"
)

// maxAuthorizationServers bounds the issuers one metadata document may name.
const maxAuthorizationServers = 16

// Guard authenticates requests. Build one with New, share it across
// handlers, and Close it when done. It is safe for concurrent use.
type Guard struct {
	cfg                 Config
	now                 func() time.Time
	leeway              time.Duration
	maxTokenBytes       int
	maxKeysPerToken     int
	algs                map[string]bool
	realm               string
	resource            string
	audience            string
	resourceMetadataURL string
	issuers             map[string]*issuer
	issuerOrder         []string
	retryAfter          time.Duration
	introspection       *introspection // nil when no issuer introspects
	warnings            logLimiter
	router              opaqueRouter
	metadataDoc         atomic.Pointer[renderedDoc] // this resource's RFC 9728 document, for MetadataHandler
	hasMetadata         bool                        // there is a document to serve
	scopes              scopeRegistry               // scopes the routes require, for scopes_supported
	cache               *tokenCaches
	dynamic             *dynamicIssuers // nil without issuer patterns
	fleet               *fleet          // nil without Config.Fleet
	dpop                *dpopState      // nil with DPoP disabled
	dc                  *discovery.Client
	// startup is set on a Guard New returned before its servers could be
	// reached (Config.RetryStartup): until it holds a ready Guard, requests
	// get 503; then every method is that Guard's.
	startup *startup

	// ctx ends at Close; shared work (introspection flights) runs on it.
	ctx    context.Context
	cancel context.CancelFunc
}

// New runs discovery, fetches each trusted issuer's keys once and starts
// their background refresh. ctx bounds the start-up fetches only; Close
// stops the background work.
func New(ctx context.Context, cfg Config) (*Guard, error) {
	g, err := newGuard(ctx, cfg)
	if err != nil && cfg.RetryStartup && isFetchFailure(err) {
		return startInBackground(cfg, err)
	}
	return g, err
}

// newGuard builds a Guard whose issuers are all discovered and fetched.
func newGuard(ctx context.Context, cfg Config) (*Guard, error) {
	g := &Guard{cfg: cfg, now: cfg.Now, issuers: make(map[string]*issuer)}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.cache = newTokenCaches(cfg.TokenCacheSize)
	if g.now == nil {
		g.now = time.Now
	}
	switch {
	case cfg.Leeway == 0:
		g.leeway = 30 * time.Second
	case cfg.Leeway > 0:
		g.leeway = cfg.Leeway
	}
	g.maxTokenBytes = cfg.MaxTokenBytes
	if g.maxTokenBytes <= 0 {
		g.maxTokenBytes = 64 << 10
	}
	g.maxKeysPerToken = cfg.MaxKeysPerToken
	if g.maxKeysPerToken <= 0 {
		g.maxKeysPerToken = 2
	}
	g.retryAfter = cfg.UnknownKeyCooldown
	if g.retryAfter <= 0 {
		g.retryAfter = 5 * time.Second
	}
	var err error
	if g.algs, err = parseAlgs(cfg.Algorithms); err != nil {
		return nil, err
	}
	if g.fleet, err = newFleet(cfg.Fleet); err != nil {
		return nil, err
	}
	if cfg.Audience != "" && cfg.InsecureSkipAudienceCheck {
		return nil, errors.New("tokenguard: Config.Audience and InsecureSkipAudienceCheck both set: choose one")
	}
	dc := g.discoveryClient()
	primary, err := g.discoverResource(ctx, dc)
	if err != nil {
		return nil, err
	}
	g.audience = cfg.Audience
	if g.audience == "" {
		g.audience = g.resource
	}
	g.realm = cfg.Realm
	if g.realm == "" {
		g.realm = g.resource
	}
	if (cfg.JWKSURL != "" || cfg.JWKS != nil) && len(primary) != 1 {
		return nil, errors.New("tokenguard: JWKSURL (or JWKS) needs exactly one issuer; set Config.Issuer")
	}
	// Every policy is settled before anything is fetched: a configuration
	// that could send a credential or a token to the wrong issuer fails
	// here, not on the first request.
	plan, err := g.planIssuers(primary)
	if err != nil {
		return nil, err
	}
	if plan.introspects() {
		g.introspection = newIntrospection(plan, cfg.Introspection.CacheCapacity, g.now)
	}
	for _, spec := range plan.exact {
		if err := g.addIssuer(ctx, dc, spec); err != nil {
			g.Close()
			return nil, err
		}
	}
	if len(plan.patterns) > 0 {
		g.dynamic = newDynamicIssuers(plan.patterns, cfg.MaxPatternIssuers)
	}
	if len(g.issuers) == 0 && g.dynamic == nil {
		g.Close()
		return nil, errors.New("tokenguard: no trusted issuer")
	}
	if g.dpop, err = newDPoP(cfg.DPoP, g.resource, plan); err != nil {
		g.Close()
		return nil, err
	}
	g.buildRouter(plan)
	if err := g.buildMetadata(); err != nil {
		g.Close()
		return nil, fmt.Errorf("tokenguard: resource metadata: %w", err)
	}
	return g, nil
}

// discoverResource settles the resource identifier and metadata URL, and
// returns the issuers to trust.
func (g *Guard) discoverResource(ctx context.Context, dc *discovery.Client) ([]string, error) {
	cfg := g.cfg
	g.resource = cfg.Resource
	g.resourceMetadataURL = cfg.ResourceMetadataURL
	if cfg.Issuer == "" && g.resourceMetadataURL == "" && cfg.Resource == "" && len(cfg.Issuers) > 0 {
		return nil, nil // only Config.Issuers are trusted
	}
	if cfg.Issuer != "" {
		if g.resourceMetadataURL == "" && cfg.Resource != "" {
			// The document MetadataHandler serves lives here, so challenges
			// can point clients at it (RFC 9728 §5.1).
			u, err := discovery.ResourceMetadataURL(cfg.Resource)
			if err != nil {
				return nil, fmt.Errorf("tokenguard: %w", err)
			}
			g.resourceMetadataURL = u
		}
		return []string{cfg.Issuer}, nil
	}
	if cfg.JWKSURL != "" || cfg.JWKS != nil {
		return nil, errors.New("tokenguard: JWKSURL (or JWKS) needs Config.Issuer too: a key set alone does not say whose tokens to trust")
	}
	if g.resourceMetadataURL == "" {
		if cfg.Resource == "" {
			return nil, errors.New("tokenguard: nothing to discover from: set ResourceMetadataURL, Resource or Issuer")
		}
		u, err := discovery.ResourceMetadataURL(cfg.Resource)
		if err != nil {
			return nil, fmt.Errorf("tokenguard: %w", err)
		}
		g.resourceMetadataURL = u
	}
	if err := dc.CheckResource(g.resourceMetadataURL, cfg.Resource); err != nil {
		return nil, fmt.Errorf("tokenguard: %w", err)
	}
	octx, done := g.upstream(ctx, UpstreamCall{Kind: UpstreamDiscovery, URL: g.resourceMetadataURL, Trigger: "start"})
	md, err := dc.FetchResource(octx, g.resourceMetadataURL, cfg.Resource)
	done(UpstreamResult{Status: statusOf(err), Err: err})
	if err != nil {
		return nil, fetchFailure{fmt.Errorf("tokenguard: %w", err)}
	}
	if len(md.AuthorizationServers) > maxAuthorizationServers {
		// Each one costs discovery fetches and a refresh loop at start-up.
		return nil, fmt.Errorf("tokenguard: %s lists %d authorization servers, more than the %d supported", g.resourceMetadataURL, len(md.AuthorizationServers), maxAuthorizationServers)
	}
	g.resource = md.Resource
	return md.AuthorizationServers, nil
}

// discoveryClient is the bounded client every discovery fetch goes through.
func (g *Guard) discoveryClient() *discovery.Client {
	if g.dc == nil {
		g.dc = &discovery.Client{
			HTTPClient:        g.cfg.HTTPClient,
			Timeout:           g.cfg.FetchTimeout,
			MaxBytes:          g.cfg.MaxDocumentBytes,
			InsecureAllowHTTP: g.cfg.InsecureAllowHTTP,
		}
	}
	return g.dc
}

// addIssuer trusts the issuer of spec from now on.
func (g *Guard) addIssuer(ctx context.Context, dc *discovery.Client, spec issuerSpec) error {
	iss, err := g.newIssuer(ctx, dc, spec)
	if err != nil {
		return err
	}
	g.issuers[spec.id] = iss
	g.issuerOrder = append(g.issuerOrder, spec.id)
	return nil
}

// configError marks a failure of an issuer's own configuration (as
// opposed to a fetch), which trying again will not fix.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// newIssuer discovers spec's issuer (unless it has a JWKS URL), fetches its
// keys and builds its introspection client from its own metadata.
func (g *Guard) newIssuer(ctx context.Context, dc *discovery.Client, spec issuerSpec) (*issuer, error) {
	id := spec.id
	iss := &issuer{
		id:             id,
		audiences:      spec.audiences,
		skipAudience:   spec.skipAudience,
		algs:           spec.algs,
		leeway:         spec.leeway,
		introspectJWTs: spec.introspectJWTs,
		shape:          spec.shape,
	}
	jwksURL := spec.jwksURL
	if jwksURL == "" && spec.jwksDoc == nil {
		if err := dc.CheckServer(id); err != nil {
			return nil, configError{fmt.Errorf("tokenguard: %w", err)}
		}
		call := UpstreamCall{Kind: UpstreamDiscovery, Issuer: id, Trigger: "start"}
		if urls, _ := discovery.ServerMetadataURLs(id); len(urls) > 0 {
			call.URL = urls[0] // the RFC 8414 one; an OpenID one may follow
		}
		if spec.tenant {
			// The tenant is what an unverified token names: until its
			// server answers for it, Events see only the pattern.
			call = UpstreamCall{Kind: UpstreamDiscovery, Issuer: spec.pattern, Trigger: "pattern"}
		}
		octx, done := g.upstream(ctx, call)
		md, err := dc.FetchServer(octx, id)
		done(UpstreamResult{Status: statusOf(err), Err: err})
		if err != nil {
			return nil, fetchFailure{fmt.Errorf("tokenguard: %w", err)}
		}
		iss.meta = md
		jwksURL = md.JWKSURI
		if jwksURL == "" && spec.introspection == nil {
			return nil, configError{fmt.Errorf("tokenguard: authorization server %s publishes no jwks_uri and does not introspect", id)}
		}
	}
	if spec.jwksDoc != nil {
		set, err := jwks.NewStatic(spec.jwksDoc, jwks.Options{
			MaxBytes: g.cfg.MaxDocumentBytes,
			Now:      g.cfg.Now,
			OnError:  g.keySetLogger(id),
		})
		if err != nil {
			return nil, configError{fmt.Errorf("tokenguard: keys of issuer %s: %w", id, err)}
		}
		iss.keys = set
	} else if jwksURL != "" {
		if _, err := fetch.CheckURL(jwksURL, g.cfg.InsecureAllowHTTP); err != nil {
			return nil, configError{fmt.Errorf("tokenguard: keys of issuer %s: jwks: %w", id, err)}
		}
		set, err := jwks.New(ctx, jwksURL, jwks.Options{
			HTTPClient:         g.cfg.HTTPClient,
			FetchTimeout:       g.cfg.FetchTimeout,
			MaxBytes:           g.cfg.MaxDocumentBytes,
			MinRefreshInterval: g.cfg.KeyRefreshMin,
			MaxRefreshInterval: g.cfg.KeyRefreshMax,
			UnknownKeyCooldown: g.cfg.UnknownKeyCooldown,
			MaxStaleness:       g.cfg.MaxKeyStaleness,
			InsecureAllowHTTP:  g.cfg.InsecureAllowHTTP,
			Now:                g.cfg.Now,
			OnError:            g.keySetLogger(id),
			Observe:            g.keySetObserver(id, jwksURL),
			OnRateLimited:      g.keySetLimited(id),
		})
		if err != nil {
			return nil, fetchFailure{fmt.Errorf("tokenguard: keys of issuer %s: %w", id, err)}
		}
		iss.keys = set
	}
	if spec.introspection != nil {
		in, err := g.newIntrospector(iss, spec)
		if err != nil {
			if iss.keys != nil {
				iss.keys.Close()
			}
			return nil, configError{err}
		}
		iss.intro = in
	}
	return iss, nil
}

// keySetLogger reports the failures of issuer id's key set.
func (g *Guard) keySetLogger(id string) func(error) {
	return func(err error) {
		if g.cfg.Logger != nil {
			g.cfg.Logger.Warn("tokenguard: key set", "issuer", id, "error", err)
		}
	}
}

// buildRouter settles where opaque tokens go (checkRouting has refused
// every configuration in which that is ambiguous).
func (g *Guard) buildRouter(plan *issuerPlan) {
	g.router = opaqueRouter{hook: g.cfg.RouteOpaque}
	if g.router.hook != nil {
		return
	}
	var unprefixed []*issuer
	for _, spec := range plan.exact {
		iss := g.issuers[spec.id]
		if iss.intro == nil {
			continue
		}
		if len(spec.introspection.TokenPrefixes) == 0 {
			unprefixed = append(unprefixed, iss)
		}
		for _, p := range spec.introspection.TokenPrefixes {
			g.router.prefixes = append(g.router.prefixes, routePrefix{prefix: p, iss: iss})
		}
	}
	// A pattern never takes the rest: an opaque token cannot name a tenant.
	if len(unprefixed) == 1 {
		g.router.rest = unprefixed[0]
	}
}

// Close stops every background refresh and waits for it to end, and
// cancels introspection calls in flight.
func (g *Guard) Close() error {
	if g.startup != nil {
		g.startup.close()
	}
	g.cancel()
	for _, iss := range g.issuers {
		if iss.keys != nil {
			iss.keys.Close()
		}
	}
	if g.dynamic != nil {
		g.dynamic.close()
	}
	return nil
}

// Resource returns the resource identifier tokens are checked against.
func (g *Guard) Resource() string {
	if in := g.started(); in != nil {
		return in.Resource()
	}
	return g.resource
}

// ResourceMetadataURL returns the RFC 9728 metadata URL named in
// challenges, or "" when none is known.
func (g *Guard) ResourceMetadataURL() string {
	if in := g.started(); in != nil {
		return in.ResourceMetadataURL()
	}
	return g.resourceMetadataURL
}

// Issuers returns the trusted issuers, sorted.
func (g *Guard) Issuers() []string {
	if in := g.started(); in != nil {
		return in.Issuers()
	}
	out := make([]string, 0, len(g.issuers))
	for id := range g.issuers {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Authenticate validates the request's bearer token and returns its
// Principal. It writes nothing; on failure the error is an *Error for
// WriteError. Frameworks that do not take net/http middleware use this.
func (g *Guard) Authenticate(r *http.Request) (*Principal, error) {
	if g.startup != nil {
		in := g.startup.guard()
		if in == nil {
			return nil, g.startup.unavailable(g.now())
		}
		return in.Authenticate(r)
	}
	var path TokenPath
	if g.cfg.Events.Decision == nil {
		p, e := g.authenticate(r, &path)
		if e != nil {
			return nil, e
		}
		return p, nil
	}
	start := time.Now()
	p, e := g.authenticate(r, &path)
	d := Decision{Stage: StageAuthenticate, Status: http.StatusOK, Path: path, DPoP: g.dpop != nil && usesDPoP(r)}
	if p != nil {
		d.Issuer = p.Issuer
	}
	if e != nil {
		d.Status, d.Reason = e.Status, e.Reason
	}
	d.Duration = time.Since(start)
	g.decision(r.Context(), d)
	if e != nil {
		return nil, e
	}
	return p, nil
}

// authenticate is Authenticate's judgment; path is set to how the token
// was judged. On a refusal after the token's own judgment (its binding, a
// DPoP proof) it returns the Principal too, for the Decision's issuer.
func (g *Guard) authenticate(r *http.Request, path *TokenPath) (*Principal, *Error) {
	token, e := g.extract(r)
	if e != nil {
		return nil, e
	}
	p, e := g.authenticateToken(r.Context(), token, path)
	if e != nil {
		return nil, e
	}
	if e := g.checkBinding(r, p); e != nil {
		return p, e
	}
	if g.dpop != nil {
		if e := g.checkDPoP(r, p, token); e != nil {
			return p, e
		}
	}
	return p, nil
}

func (g *Guard) log(r *http.Request, e *Error) {
	l := g.cfg.Logger
	if l == nil {
		return
	}
	level := slog.LevelDebug
	if e.Status >= 500 {
		level = slog.LevelWarn
	}
	if !l.Enabled(r.Context(), level) {
		return
	}
	msg := e.Error() // the cause names kids, algs and issuers but never the token
	attrs := []any{"status", e.Status, "error", msg, "method", r.Method, "path", r.URL.Path}
	if level >= slog.LevelWarn {
		// An outage fails every request the same way: one record per
		// cause per interval, with a count of the ones left out.
		ok, suppressed := g.warnings.allow(logKey(e), g.now())
		if !ok {
			return
		}
		if suppressed > 0 {
			attrs = append(attrs, "suppressed", suppressed)
		}
	}
	l.Log(r.Context(), level, "tokenguard: request rejected", attrs...)
}
