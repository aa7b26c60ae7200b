package tokenguard

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// issuerPlan is every trusted issuer's resolved policy, before anything is
// fetched: exact issuers in trust order (Config.Issuers entries, then the
// primary issuers no entry names) and patterns.
type issuerPlan struct {
	exact    []issuerSpec
	patterns []issuerPattern
}

// planIssuers resolves the policy of the entries of Config.Issuers and of
// the primary issuers (Config.Issuer, or those the resource metadata
// names), and refuses a configuration in which a credential, a token or an
// audience could go to the wrong issuer.
func (g *Guard) planIssuers(primary []string) (*issuerPlan, error) {
	cfg := g.cfg
	configured := make(map[string]TrustedIssuer, len(cfg.Issuers))
	for _, ti := range cfg.Issuers {
		if ti.Issuer == "" {
			return nil, errors.New("tokenguard: a Config.Issuers entry has no Issuer")
		}
		if _, dup := configured[ti.Issuer]; dup {
			// The second one used to be dropped silently, policy and all.
			return nil, fmt.Errorf("tokenguard: issuer %s is listed twice in Config.Issuers: merge the two entries", ti.Issuer)
		}
		configured[ti.Issuer] = ti
	}
	primary = dedupe(primary)
	if err := checkGuardIntrospection(cfg.Introspection); err != nil {
		return nil, err
	}
	owner, err := introspectionOwner(cfg, primary, configured)
	if err != nil {
		return nil, err
	}

	plan := &issuerPlan{}
	for _, ti := range cfg.Issuers {
		spec, err := g.resolveIssuer(ti, ti.Issuer == owner)
		if err != nil {
			return nil, err
		}
		if spec.jwksURL == "" && spec.jwksDoc == nil && len(primary) == 1 && ti.Issuer == primary[0] {
			// Config.Issuer with Config.JWKSURL or JWKS
			spec.jwksURL, spec.jwksDoc = cfg.JWKSURL, cfg.JWKS
		}
		if !strings.Contains(ti.Issuer, "*") {
			plan.exact = append(plan.exact, spec)
			continue
		}
		p, err := compilePattern(ti, spec, cfg.InsecureAllowHTTP)
		if err != nil {
			return nil, fmt.Errorf("tokenguard: %w", err)
		}
		plan.patterns = append(plan.patterns, p)
	}
	for _, id := range primary {
		if _, ok := configured[id]; ok {
			continue // the entry's policy is this issuer's
		}
		spec, err := g.resolveIssuer(TrustedIssuer{Issuer: id, JWKSURL: cfg.JWKSURL, JWKS: cfg.JWKS}, id == owner)
		if err != nil {
			return nil, err
		}
		plan.exact = append(plan.exact, spec)
	}
	if err := checkJWTPolicy(cfg, plan); err != nil {
		return nil, err
	}
	if err := checkRouting(cfg, plan); err != nil {
		return nil, err
	}
	return plan, nil
}

// introspects reports whether any issuer introspects.
func (p *issuerPlan) introspects() bool {
	for _, s := range p.exact {
		if s.introspection != nil {
			return true
		}
	}
	for _, s := range p.patterns {
		if s.spec.introspection != nil {
			return true
		}
	}
	return false
}

// checkJWTPolicy refuses a JWT-introspection policy that would silently
// cover less than it says.
func checkJWTPolicy(cfg Config, plan *issuerPlan) error {
	jwts := cfg.Introspection.JWTs
	if jwts == IntrospectJWTNever {
		return nil
	}
	if !plan.introspects() {
		return errors.New("tokenguard: Config.Introspection.JWTs is set, but no issuer introspects: give Config.Introspection credentials, or an issuer its TrustedIssuer.Introspection")
	}
	if jwts != IntrospectJWTAlways {
		return nil
	}
	specs := slices.Clone(plan.exact)
	for _, p := range plan.patterns {
		specs = append(specs, p.spec)
	}
	for _, s := range specs {
		if s.jwtPolicy == IssuerIntrospectDefault && s.introspection == nil {
			return fmt.Errorf("tokenguard: IntrospectJWTAlways cannot cover issuer %s, which does not introspect: give it a TrustedIssuer.Introspection, or set its TrustedIssuer.Introspect to IssuerIntrospectOff", s.id)
		}
	}
	return nil
}

// checkGuardIntrospection refuses settings of Config.Introspection that
// would silently do nothing.
func checkGuardIntrospection(ic IntrospectionConfig) error {
	if ic.enabled() {
		return nil
	}
	var set []string
	for _, f := range []struct {
		name string
		on   bool
	}{
		{"Endpoint", ic.Endpoint != ""}, {"ClientSecret", ic.ClientSecret != ""},
		{"TokenEndpoint", ic.TokenEndpoint != ""}, {"TokenPrefixes", len(ic.TokenPrefixes) > 0}, {"SignedResponses", ic.SignedResponses},
		{"SendTokenTypeHint", ic.SendTokenTypeHint},
	} {
		if f.on {
			set = append(set, f.name)
		}
	}
	if len(set) > 0 {
		return fmt.Errorf("tokenguard: Config.Introspection sets %s but no ClientID, BearerToken or AuthMethod, so nothing would be introspected", strings.Join(set, ", "))
	}
	return nil
}

// introspectionOwner names the one issuer Config.Introspection's
// credentials belong to: the primary issuer, or with none the only entry
// of Config.Issuers. Ownership of a secret is never guessed: any other
// shape is refused. It returns "" when Config.Introspection has no
// credentials.
func introspectionOwner(cfg Config, primary []string, configured map[string]TrustedIssuer) (string, error) {
	if !cfg.Introspection.enabled() {
		return "", nil
	}
	var owner string
	switch {
	case len(primary) == 1:
		owner = primary[0]
	case len(primary) > 1:
		// Sending one server's secret, and its tokens, to every other
		// server is the hole this refuses.
		return "", fmt.Errorf("tokenguard: the resource metadata names %d authorization servers (%s), and Config.Introspection's credentials belong to one: give each issuer that introspects a Config.Issuers entry with its own TrustedIssuer.Introspection, and leave ClientID, ClientSecret, BearerToken and AuthMethod of Config.Introspection empty", len(primary), strings.Join(primary, ", "))
	case len(cfg.Issuers) == 1:
		owner = cfg.Issuers[0].Issuer
	default:
		ids := make([]string, 0, len(cfg.Issuers))
		for _, ti := range cfg.Issuers {
			ids = append(ids, ti.Issuer)
		}
		return "", fmt.Errorf("tokenguard: Config.Introspection's credentials could belong to any of %d trusted issuers (%s), and credentials belong to one: move them to the TrustedIssuer.Introspection of the issuer they are for, and leave ClientID, ClientSecret, BearerToken and AuthMethod of Config.Introspection empty", len(ids), strings.Join(ids, ", "))
	}
	if ti, ok := configured[owner]; ok && ti.Introspection != nil {
		return "", fmt.Errorf("tokenguard: Config.Introspection has credentials for issuer %s, and its Config.Issuers entry has a TrustedIssuer.Introspection of its own: keep one of the two", owner)
	}
	return owner, nil
}

// dedupe returns list without repeats, in first-seen order.
func dedupe(list []string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// resolveIssuer applies the guard-wide defaults to one entry.
func (g *Guard) resolveIssuer(ti TrustedIssuer, ownsGuardIntrospection bool) (issuerSpec, error) {
	cfg := g.cfg
	spec := issuerSpec{id: ti.Issuer, jwksURL: ti.JWKSURL, jwksDoc: ti.JWKS, algs: g.algs, leeway: g.leeway, jwtPolicy: ti.Introspect, dpop: ti.DPoP}
	if ti.DPoP < 0 || ti.DPoP > DPoPRequired {
		return spec, fmt.Errorf("tokenguard: issuer %s: DPoP mode %d is not a mode", ti.Issuer, ti.DPoP)
	}
	if ti.JWKSURL != "" && ti.JWKS != nil {
		return spec, fmt.Errorf("tokenguard: issuer %s has both JWKSURL and JWKS: choose one", ti.Issuer)
	}
	if len(ti.Algorithms) > 0 {
		algs, err := parseAlgs(ti.Algorithms)
		if err != nil {
			return spec, fmt.Errorf("tokenguard: issuer %s: %w", ti.Issuer, err)
		}
		spec.algs = algs
	}
	switch {
	case ti.Leeway > 0:
		spec.leeway = ti.Leeway
	case ti.Leeway < 0:
		spec.leeway = 0
	}

	// An audience named here wins over every guard-wide default,
	// InsecureSkipAudienceCheck included.
	for _, a := range append([]string{ti.Audience}, ti.Audiences...) {
		if a != "" && !slices.Contains(spec.audiences, a) {
			spec.audiences = append(spec.audiences, a)
		}
	}
	switch {
	case ti.InsecureSkipAudienceCheck && len(spec.audiences) > 0:
		return spec, fmt.Errorf("tokenguard: issuer %s: InsecureSkipAudienceCheck and Audience(s) both set: choose one", ti.Issuer)
	case ti.InsecureSkipAudienceCheck:
		spec.skipAudience = true
	case len(spec.audiences) > 0:
	case cfg.InsecureSkipAudienceCheck:
		spec.skipAudience = true
	case g.audience != "":
		spec.audiences = []string{g.audience}
	default:
		return spec, fmt.Errorf("tokenguard: issuer %s has no audience: set its TrustedIssuer.Audience, or Config.Audience or Config.Resource (or InsecureSkipAudienceCheck)", ti.Issuer)
	}

	spec.shape = ti.Shape
	spec.shape.ScopeClaims = slices.Clone(ti.Shape.ScopeClaims)
	spec.shape.RoleClaims = slices.Clone(ti.Shape.RoleClaims)
	if err := spec.shape.check(ti.Issuer, spec.skipAudience); err != nil {
		return spec, err
	}
	switch {
	case ti.Introspection != nil:
		ic, err := issuerIntrospection(ti.Issuer, *ti.Introspection, cfg.Introspection)
		if err != nil {
			return spec, err
		}
		spec.introspection = &ic
	case ownsGuardIntrospection:
		ic := cfg.Introspection
		if err := checkSignedResponses(ti.Issuer, ic); err != nil {
			return spec, err
		}
		spec.introspection = &ic
	}
	switch ti.Introspect {
	case IssuerIntrospectOn:
		if spec.introspection == nil {
			return spec, fmt.Errorf("tokenguard: issuer %s: Introspect is on but the issuer does not introspect: give it a TrustedIssuer.Introspection", ti.Issuer)
		}
		spec.introspectJWTs = true
	case IssuerIntrospectOff:
	default:
		spec.introspectJWTs = spec.introspection != nil && spec.introspection.JWTs == IntrospectJWTAlways
	}
	return spec, nil
}

// checkSignedResponses refuses RFC 9701 answers without the client id
// they are addressed to.
func checkSignedResponses(id string, ic IntrospectionConfig) error {
	if ic.SignedResponses && ic.ClientID == "" {
		return fmt.Errorf("tokenguard: issuer %s: SignedResponses needs ClientID: a signed answer's aud is the client it is for", id)
	}
	return nil
}

// issuerIntrospection checks a TrustedIssuer.Introspection and fills in
// what it inherits from Config.Introspection: limits and the JWT policy,
// never a credential or an endpoint.
func issuerIntrospection(id string, ic, guard IntrospectionConfig) (IntrospectionConfig, error) {
	if !ic.enabled() {
		return ic, fmt.Errorf("tokenguard: issuer %s: TrustedIssuer.Introspection sets no ClientID, BearerToken or AuthMethod", id)
	}
	if ic.CacheCapacity != 0 {
		return ic, fmt.Errorf("tokenguard: issuer %s: CacheCapacity is guard-wide: set it in Config.Introspection", id)
	}
	if ic.JWTs == IntrospectJWTUnknownIssuer {
		return ic, fmt.Errorf("tokenguard: issuer %s: IntrospectJWTUnknownIssuer is guard-wide: set it in Config.Introspection", id)
	}
	if err := checkSignedResponses(id, ic); err != nil {
		return ic, err
	}
	if ic.MaxTTL == 0 {
		ic.MaxTTL = guard.MaxTTL
	}
	if ic.NegativeTTL == 0 {
		ic.NegativeTTL = guard.NegativeTTL
	}
	if ic.MaxConcurrent == 0 {
		ic.MaxConcurrent = guard.MaxConcurrent
	}
	ic.RequireAudience = ic.RequireAudience || guard.RequireAudience
	if ic.JWTs == IntrospectJWTNever && guard.JWTs == IntrospectJWTAlways {
		ic.JWTs = IntrospectJWTAlways
	}
	return ic, nil
}

// minTokenPrefix is the shortest TokenPrefixes entry: a shorter one would
// claim a large share of other issuers' random tokens (1 in 64 for one
// base64url character).
const minTokenPrefix = 3

// checkRouting refuses a configuration in which an opaque token, which
// names no issuer, could not be sent to exactly one issuer, or in which an
// issuer's introspection could never be used.
func checkRouting(cfg Config, plan *issuerPlan) error {
	var unprefixed []string // exact issuers that introspect and claim no prefix
	prefixOwner := map[string]string{}
	for _, s := range plan.exact {
		if s.introspection == nil {
			continue
		}
		if len(s.introspection.TokenPrefixes) == 0 {
			unprefixed = append(unprefixed, s.id)
		}
		for _, p := range s.introspection.TokenPrefixes {
			if len(p) < minTokenPrefix {
				return fmt.Errorf("tokenguard: issuer %s: TokenPrefixes entry %q is shorter than %d characters: it would claim other issuers' tokens", s.id, p, minTokenPrefix)
			}
			if o, dup := prefixOwner[p]; dup && o != s.id {
				return fmt.Errorf("tokenguard: TokenPrefixes %q is claimed by issuers %s and %s: a token could belong to either", p, o, s.id)
			}
			prefixOwner[p] = s.id
		}
	}
	for _, p := range plan.patterns {
		ic := p.spec.introspection
		if ic == nil {
			continue
		}
		if len(ic.TokenPrefixes) > 0 {
			return fmt.Errorf("tokenguard: issuer pattern %s: TokenPrefixes cannot say which tenant a token belongs to: set Config.RouteOpaque", p.spec.id)
		}
		if cfg.RouteOpaque == nil && !p.spec.introspectJWTs && cfg.Introspection.JWTs != IntrospectJWTUnknownIssuer {
			return fmt.Errorf("tokenguard: issuer pattern %s introspects, but no opaque token can reach a tenant without Config.RouteOpaque, and none of its JWTs is introspected: set Config.RouteOpaque or its TrustedIssuer.Introspect", p.spec.id)
		}
	}
	if cfg.RouteOpaque != nil {
		if len(prefixOwner) > 0 {
			return errors.New("tokenguard: set Config.RouteOpaque or TokenPrefixes, not both")
		}
		if !plan.introspects() {
			return errors.New("tokenguard: Config.RouteOpaque is set, but no issuer introspects")
		}
		return nil
	}
	// A prefix of one issuer's that starts another issuer's makes a token
	// match both.
	for a, ia := range prefixOwner {
		for b, ib := range prefixOwner {
			if ia != ib && strings.HasPrefix(a, b) {
				return fmt.Errorf("tokenguard: TokenPrefixes %q (issuer %s) and %q (issuer %s) overlap: a token could belong to either", a, ia, b, ib)
			}
		}
	}
	if len(unprefixed) > 1 {
		return fmt.Errorf("tokenguard: %d issuers introspect without TokenPrefixes (%s), and an opaque token names no issuer, so at most one of them may take the tokens no prefix claims: set Introspection.TokenPrefixes on the others, or Config.RouteOpaque", len(unprefixed), strings.Join(unprefixed, ", "))
	}
	return nil
}
