package tokenguard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/tokenguard/tokenguard/cache"
	"github.com/tokenguard/tokenguard/discovery"
	"github.com/tokenguard/tokenguard/internal/fetch"
	ijws "github.com/tokenguard/tokenguard/internal/jws"
	"github.com/tokenguard/tokenguard/jwks"
)

// TrustedIssuer is an authorization server trusted beside (or instead of)
// those the resource metadata names, with its own policy. An issuer is the
// unit of trust: its keys verify only its tokens, its introspection endpoint
// is asked only about tokens routed to it and gets only its credentials,
// and its answers are checked against its own audiences.
type TrustedIssuer struct {
	// Issuer is the issuer identifier, compared exactly. It may instead be
	// a pattern with one "*" standing for one path segment or one host label
	// (letters, digits, '-' and '_'; at most 128 of them in a path, 63 in a
	// host), such as
	// "https://login.example.com/*/v2.0" for a server with an issuer per
	// tenant: issuers that match are discovered (RFC 8414) on first use.
	// Nothing outside the pattern is ever fetched. Each issuer or pattern
	// may be listed once; an entry naming an issuer that discovery also
	// finds gives that issuer this policy.
	Issuer string
	// JWKSURL skips discovery for an exact Issuer.
	JWKSURL string
	// JWKS is the exact Issuer's JWK Set document itself: no discovery
	// and no fetch (see Config.JWKS). It cannot be combined with JWKSURL.
	JWKS []byte
	// Audience is the aud this issuer's tokens must carry: a JWT's aud and
	// an introspection answer's aud (when the answer has one) must contain
	// Audience or one of Audiences. With neither, it defaults to
	// Config.Audience (or the resource); set here, it wins over every
	// guard-wide default, Config.InsecureSkipAudienceCheck included.
	Audience string
	// Audiences are further accepted audiences, any one of which will do.
	Audiences []string
	// InsecureSkipAudienceCheck accepts this issuer's tokens for any
	// audience. It cannot be combined with Audience or Audiences.
	InsecureSkipAudienceCheck bool
	// Algorithms is this issuer's allow-list. It defaults to
	// Config.Algorithms.
	Algorithms []string
	// Leeway is the clock skew allowed on this issuer's exp, nbf and iat.
	// Zero means Config.Leeway; a negative value means none.
	Leeway time.Duration
	// Introspect says whether this issuer's JWTs are also introspected
	// after they validate locally. It defaults to the JWTs setting of the
	// issuer's introspection (Introspection, or Config.Introspection).
	Introspect IssuerIntrospection
	// Shape says where this issuer's tokens carry what the guard reads,
	// for servers whose access tokens are not RFC 9068 ones (Dex,
	// Keycloak, Cognito, Entra ID, Auth0, Okta...). The zero value is
	// RFC 9068.
	Shape TokenShape
	// Introspection gives this issuer its own introspection client: its
	// credentials, endpoint and auth method, sent to no other server. The
	// endpoint, the auth methods and the token endpoint default to this
	// issuer's own metadata; MaxTTL, NegativeTTL and MaxConcurrent default
	// to Config.Introspection's, and so does JWTs when that is
	// IntrospectJWTAlways (opt out with Introspect: IssuerIntrospectOff).
	// Nothing else is inherited; CacheCapacity is guard-wide and cannot be
	// set here. For a pattern with "*" in the host, each tenant is a server
	// of its own, so credentials need a fixed Endpoint (and, for bearer
	// without a BearerToken, a fixed TokenEndpoint). Nil means the issuer
	// introspects only if it owns Config.Introspection (see there).
	Introspection *IntrospectionConfig
	// DPoP is this issuer's DPoP mode (RFC 9449), for a Guard whose
	// issuers differ: DPoPRequired for the one whose clients all hold
	// keys, DPoPDisabled for one that never binds its tokens. Zero means
	// Config.DPoP.Mode. The rest of Config.DPoP (Algorithms, Window,
	// Origin, nonces) holds for every issuer; Origin is then needed even
	// when Config.DPoP.Mode is off. The mode decides once the token's
	// issuer is known: a request refused before that (no token, a
	// malformed one) is answered as Config.DPoP.Mode says.
	DPoP DPoPMode
}

// IssuerIntrospection is a per-issuer override of the JWTs setting of
// the issuer's introspection.
type IssuerIntrospection int

const (
	// IssuerIntrospectDefault follows the JWTs setting of the issuer's
	// introspection (TrustedIssuer.Introspection, or Config.Introspection).
	IssuerIntrospectDefault IssuerIntrospection = iota
	// IssuerIntrospectOn introspects every JWT of the issuer after it
	// validated locally, so a revocation there takes effect at once. The
	// issuer must introspect. A JWT without scope claims (zitadel's op
	// issues them) then gets the scopes of the introspection answer, as
	// whenever its JWTs are introspected (IntrospectJWTAlways too).
	IssuerIntrospectOn
	// IssuerIntrospectOff never introspects the issuer's JWTs.
	IssuerIntrospectOff
)

// issuerSpec is the policy New resolved for one trusted issuer or pattern:
// every default applied, every conflict refused.
type issuerSpec struct {
	id             string // the issuer, or the pattern
	jwksURL        string
	jwksDoc        []byte   // static keys: nothing fetched
	audiences      []string // empty only with skipAudience
	skipAudience   bool
	algs           map[string]bool
	leeway         time.Duration
	introspection  *IntrospectionConfig // nil: the issuer does not introspect
	introspectJWTs bool
	jwtPolicy      IssuerIntrospection // as configured, before defaults
	shape          TokenShape
	limits         *introspectLimits // shared by a pattern's tenants when its endpoint is fixed; else nil
	tenant         bool              // matched by a pattern
	pattern        string            // that pattern
	dpop           DPoPMode          // zero: the Guard's
}

// issuer is one trusted authorization server and everything that judges
// its tokens.
type issuer struct {
	id           string
	keys         *jwks.Set                 // nil for an introspection-only server
	meta         *discovery.ServerMetadata // nil when JWKSURL was given
	audiences    []string
	skipAudience bool
	algs         map[string]bool
	leeway       time.Duration
	// introspectJWTs says whether a JWT it verified is also introspected.
	introspectJWTs bool
	shape          TokenShape
	intro          *introspector // nil when the issuer does not introspect
}

// acceptsAudience applies the issuer's audience policy to a token's aud.
func (iss *issuer) acceptsAudience(aud []string) bool {
	if iss.skipAudience {
		return true
	}
	for _, a := range iss.audiences {
		if slices.Contains(aud, a) {
			return true
		}
	}
	return false
}

// issuerPattern is a compiled TrustedIssuer with a "*".
type issuerPattern struct {
	prefix, suffix string
	spec           issuerSpec
	maxLabel       int // the longest label "*" stands for
}

// The longest label a pattern's "*" matches: a DNS label in a host, a
// generous tenant name in a path. The label comes from a token nobody has
// verified yet: it is fetched, logged and reported to Events, so it is
// bounded.
const (
	maxHostLabel = 63
	maxPathLabel = 128
)

// compilePattern validates a pattern: one "*", and with "*" replaced by a
// label it must be a usable issuer URL.
func compilePattern(ti TrustedIssuer, spec issuerSpec, allowInsecure bool) (issuerPattern, error) {
	prefix, suffix, _ := strings.Cut(ti.Issuer, "*")
	if strings.Contains(suffix, "*") {
		return issuerPattern{}, fmt.Errorf("issuer pattern %q has more than one *", ti.Issuer)
	}
	if ti.JWKSURL != "" || ti.JWKS != nil {
		return issuerPattern{}, fmt.Errorf("issuer pattern %q cannot have a JWKSURL or JWKS: each issuer it matches has its own", ti.Issuer)
	}
	u, err := fetch.CheckURL(prefix+"x"+suffix, allowInsecure)
	if err != nil {
		return issuerPattern{}, fmt.Errorf("issuer pattern %q: %w", ti.Issuer, err)
	}
	if !strings.HasPrefix(ti.Issuer, u.Scheme+"://") || u.RawQuery != "" {
		return issuerPattern{}, fmt.Errorf("issuer pattern %q: the scheme must be literal and there can be no query", ti.Issuer)
	}
	spec.tenant, spec.pattern = true, ti.Issuer
	if ic := spec.introspection; ic != nil {
		hostLabel := !strings.Contains(strings.TrimPrefix(prefix, u.Scheme+"://"), "/")
		if hostLabel && ic.AuthMethod != "none" {
			// Each tenant is then a server of its own, named by the token:
			// no URL that receives a credential may come from its metadata.
			if ic.Endpoint == "" {
				return issuerPattern{}, fmt.Errorf("issuer pattern %q has its * in the host, so each tenant is a different server: its credentials need a fixed Introspection.Endpoint (or AuthMethod none)", ti.Issuer)
			}
			if ic.BearerToken == "" && ic.TokenEndpoint == "" && (ic.AuthMethod == "bearer") {
				return issuerPattern{}, fmt.Errorf("issuer pattern %q has its * in the host, so each tenant is a different server: AuthMethod bearer needs a fixed Introspection.TokenEndpoint (or a BearerToken)", ti.Issuer)
			}
		}
		if ic.Endpoint != "" {
			// One server for every tenant: one set of bounds.
			spec.limits = newIntrospectLimits(ic.MaxConcurrent)
		}
	}
	maxLabel := maxPathLabel
	if !strings.Contains(strings.TrimPrefix(prefix, u.Scheme+"://"), "/") {
		maxLabel = maxHostLabel
	}
	return issuerPattern{prefix: prefix, suffix: suffix, spec: spec, maxLabel: maxLabel}, nil
}

// match reports whether iss is the pattern with "*" replaced by one label.
func (p issuerPattern) match(iss string) bool {
	if len(iss) <= len(p.prefix)+len(p.suffix) || len(iss) > len(p.prefix)+len(p.suffix)+p.maxLabel || !strings.HasPrefix(iss, p.prefix) || !strings.HasSuffix(iss, p.suffix) {
		return false
	}
	for _, c := range []byte(iss[len(p.prefix) : len(iss)-len(p.suffix)]) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// dynamicIssuers are the issuers trusted by pattern, discovered on first
// use and kept in a bounded LRU: a flood of distinct matching issuers can
// cost at most a few discoveries at a time and never more than
// MaxPatternIssuers key sets in memory.
type dynamicIssuers struct {
	patterns []issuerPattern
	live     *lru.Cache[string, *issuer]
	failed   *cache.LRU[*Error] // recent definite failures, so a bad iss is not rediscovered per request
	flights  singleflight.Group
	slots    *semaphore.Weighted
	// known are tenants discovered successfully before. A token naming a
	// tenant is not verified before its discovery, so anyone can make us
	// discover made-up tenants; known tenants (evicted from live, say)
	// then still have a slot of their own, and are never put in failed.
	known      *lru.Cache[string, struct{}]
	knownSlots *semaphore.Weighted
	closing    sync.WaitGroup // key sets of evicted issuers being closed

	// mu orders adding an issuer against close, so an issuer whose
	// discovery ends after Close has its key set closed, not leaked.
	mu     sync.Mutex
	closed bool
	// limits bound the introspection calls per endpoint URL, for the
	// tenants of patterns without a fixed endpoint: tenants that share a
	// server share its bounds, and others are not held back by it.
	limits map[string]*introspectLimits
}

// maxEndpointLimits bounds the endpoints whose limits are kept; past it, a
// new endpoint gets limits of its own.
const maxEndpointLimits = 1000

// limitsFor returns the shared limits of endpoint.
func (d *dynamicIssuers) limitsFor(endpoint string, maxConcurrent int) *introspectLimits {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l, ok := d.limits[endpoint]; ok {
		return l
	}
	l := newIntrospectLimits(maxConcurrent)
	if len(d.limits) < maxEndpointLimits {
		d.limits[endpoint] = l
	}
	return l
}

// slot waits (up to discoveryQueueWait, or until the guard closes) for a
// discovery slot: any free one, or for a known tenant the one kept for
// known tenants. It returns the function that gives the slot back.
func (d *dynamicIssuers) slot(ctx context.Context, id string) (func(), *Error) {
	if d.slots.TryAcquire(1) {
		return func() { d.slots.Release(1) }, nil
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryQueueWait)
	defer cancel()
	if d.known.Contains(id) {
		// Its own slot first, briefly (another known tenant may hold it),
		// then any.
		first, cancelFirst := context.WithTimeout(ctx, discoveryQueueWait/3)
		err := d.knownSlots.Acquire(first, 1)
		cancelFirst()
		if err == nil {
			return func() { d.knownSlots.Release(1) }, nil
		}
	}
	if err := d.slots.Acquire(ctx, 1); err != nil {
		return nil, errUnavailable(time.Second, fmt.Errorf("too many issuer discoveries in flight (waited %s for a slot)", discoveryQueueWait))
	}
	return func() { d.slots.Release(1) }, nil
}

// add keeps iss, unless the guard is closing, in which case its key set
// is closed at once.
func (d *dynamicIssuers) add(id string, iss *issuer) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		if iss.keys != nil {
			iss.keys.Close()
		}
		return
	}
	d.live.Add(id, iss)
}

// maxConcurrentDiscoveries bounds pattern-issuer discoveries in flight;
// knownTenantSlots more are kept for tenants discovered before.
const (
	maxConcurrentDiscoveries = 2
	knownTenantSlots         = 1
	// discoveryQueueWait is how long a discovery waits for a slot before
	// its requests get 503.
	discoveryQueueWait = 3 * time.Second
)

func newDynamicIssuers(patterns []issuerPattern, max int) *dynamicIssuers {
	if max <= 0 {
		max = 100
	}
	d := &dynamicIssuers{
		patterns:   patterns,
		failed:     cache.New[*Error](cache.Options{Capacity: 1000}),
		slots:      semaphore.NewWeighted(maxConcurrentDiscoveries),
		knownSlots: semaphore.NewWeighted(knownTenantSlots),
		limits:     make(map[string]*introspectLimits),
	}
	knownCap := 10 * max
	if knownCap < 1000 {
		knownCap = 1000
	}
	d.known, _ = lru.New[string, struct{}](knownCap)
	d.live, _ = lru.NewWithEvict(max, func(_ string, iss *issuer) {
		if iss.keys != nil {
			d.closing.Add(1)
			go func() {
				defer d.closing.Done()
				iss.keys.Close()
			}()
		}
	})
	return d
}

// specFor returns the policy of the first pattern id matches.
func (d *dynamicIssuers) specFor(id string) (issuerSpec, bool) {
	for _, p := range d.patterns {
		if p.match(id) {
			return p.spec, true
		}
	}
	return issuerSpec{}, false
}

// lookup returns the issuer for id, discovering it if it matches a
// pattern. It returns (nil, nil) when id matches none: an untrusted issuer
// causes no request at all.
func (g *Guard) lookupDynamic(ctx context.Context, id string) (*issuer, *Error) {
	d := g.dynamic
	if iss, ok := d.live.Get(id); ok {
		return iss, nil
	}
	spec, ok := d.specFor(id)
	if !ok {
		return nil, nil
	}
	if e, ok := d.failed.Get(ctx, id); ok {
		return nil, e
	}
	ch := d.flights.DoChan(id, func() (any, error) {
		if iss, ok := d.live.Get(id); ok {
			return iss, nil
		}
		// id is a view of the token that named it (see internal/jwt); the
		// caches below keep a copy, not the whole token, for minutes.
		id := strings.Clone(id)
		release, e := d.slot(g.ctx, id)
		if e != nil {
			return nil, e
		}
		defer release()
		iss, e := g.discoverIssuer(id, spec)
		if e != nil {
			if e.Status != 503 && !d.known.Contains(id) {
				d.failed.Set(context.Background(), id, e, time.Minute)
			}
			return nil, e
		}
		d.known.Add(id, struct{}{})
		d.add(id, iss)
		return iss, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err.(*Error)
		}
		return res.Val.(*issuer), nil
	case <-ctx.Done():
		return nil, errUnavailable(time.Second, fmt.Errorf("waiting for discovery of issuer %s: %w", quote(id), ctx.Err()))
	}
}

// discoverIssuer runs RFC 8414 discovery and the first key fetch for a
// pattern-matched issuer, on the Guard's lifetime context.
func (g *Guard) discoverIssuer(id string, spec issuerSpec) (*issuer, *Error) {
	timeout := g.cfg.FetchTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(g.ctx, 2*timeout)
	defer cancel()
	spec.id = id
	iss, err := g.newIssuer(ctx, g.discoveryClient(), spec)
	if err != nil {
		var ce configError
		if errors.As(err, &ce) {
			// The tenant's own metadata does not fit the pattern's policy
			// (no introspection endpoint, say): definite, and cached as
			// such, so it is not discovered again per request.
			if g.cfg.Logger != nil {
				g.cfg.Logger.Warn("tokenguard: pattern issuer refused", "issuer", id, "error", err)
			}
			return nil, errInvalidToken("untrusted issuer", err)
		}
		if errors.Is(err, discovery.ErrNotFound) || errors.Is(err, discovery.ErrIssuerMismatch) || errors.Is(err, fetch.ErrInsecureURL) {
			return nil, errInvalidToken("untrusted issuer", err)
		}
		return nil, errUnavailable(g.retryAfter, err)
	}
	return iss, nil
}

func (d *dynamicIssuers) close() {
	d.mu.Lock()
	d.closed = true
	for _, id := range d.live.Keys() {
		d.live.Remove(id) // the eviction callback closes its key set
	}
	d.mu.Unlock()
	d.closing.Wait()
}

// parseAlgs validates an allow-list; empty means every supported one.
func parseAlgs(list []string) (map[string]bool, error) {
	if len(list) == 0 {
		list = ijws.Algorithms
	}
	algs := make(map[string]bool, len(list))
	for _, a := range list {
		if !ijws.Supported(a) {
			return nil, algorithmError(a)
		}
		algs[a] = true
	}
	return algs, nil
}

// algorithmError says why a is refused, and what was probably meant.
func algorithmError(a string) error {
	for _, known := range ijws.Algorithms {
		if strings.EqualFold(a, known) {
			return fmt.Errorf("tokenguard: unknown algorithm %q: did you mean %q? (names are case-sensitive, RFC 7518)", a, known)
		}
	}
	if up := strings.ToUpper(a); strings.HasPrefix(up, "HS") || up == "NONE" {
		return fmt.Errorf("tokenguard: algorithm %q is not allowed: only asymmetric signature algorithms (%v); HMAC and none never are", a, ijws.Algorithms)
	}
	return fmt.Errorf("tokenguard: unknown algorithm %q: the supported ones are %v", a, ijws.Algorithms)
}

// PatternIssuers returns how many pattern-matched issuers are kept now.
func (g *Guard) PatternIssuers() int {
	if in := g.started(); in != nil {
		return in.PatternIssuers()
	}
	if g.dynamic == nil {
		return 0
	}
	return g.dynamic.live.Len()
}
