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
	primary = slices.Compact(slices.Clone(primary))
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
		if spec.jwksURL == "" && len(primary) == 1 && ti.Issuer == primary[0] {
			spec.jwksURL = cfg.JWKSURL // Config.Issuer with Config.JWKSURL
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
		spec, err := g.resolveIssuer(TrustedIssuer{Issuer: id, JWKSURL: cfg.JWKSURL}, id == owner)
		if err != nil {
			return nil, err
		}
		plan.exact = append(plan.exact, spec)
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
		{"TokenPrefixes", len(ic.TokenPrefixes) > 0}, {"SignedResponses", ic.SignedResponses},
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
// credentials belong to: the primary issuer, or without one the only
// Config.Issuers entry that has no introspection of its own. It returns ""
// when Config.Introspection has no credentials.
func introspectionOwner(cfg Config, primary []string, configured map[string]TrustedIssuer) (string, error) {
	if !cfg.Introspection.enabled() {
		return "", nil
	}
	var candidates []string
	if len(primary) > 0 {
		for _, id := range primary {
			if ti, ok := configured[id]; !ok || ti.Introspection == nil {
				candidates = append(candidates, id)
			}
		}
	} else {
		for _, ti := range cfg.Issuers {
			if ti.Introspection == nil {
				candidates = append(candidates, ti.Issuer)
			}
		}
	}
	switch len(candidates) {
	case 1:
		return candidates[0], nil
	case 0:
		return "", errors.New("tokenguard: Config.Introspection has credentials, but every trusted issuer has its own TrustedIssuer.Introspection: remove ClientID, ClientSecret, BearerToken and AuthMethod from Config.Introspection")
	}
	// Sending one server's secret, and its tokens, to every other server
	// is the hole this refuses.
	return "", fmt.Errorf("tokenguard: Config.Introspection's credentials would go to %d authorization servers (%s), but credentials belong to one: give each issuer that introspects a Config.Issuers entry with its own TrustedIssuer.Introspection, and leave ClientID, ClientSecret, BearerToken and AuthMethod of Config.Introspection empty", len(candidates), strings.Join(candidates, ", "))
}

// resolveIssuer applies the guard-wide defaults to one entry.
func (g *Guard) resolveIssuer(ti TrustedIssuer, ownsGuardIntrospection bool) (issuerSpec, error) {
	cfg := g.cfg
	spec := issuerSpec{id: ti.Issuer, jwksURL: ti.JWKSURL, algs: g.algs, leeway: g.leeway}
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

	switch {
	case ti.Introspection != nil:
		ic, err := issuerIntrospection(ti.Issuer, *ti.Introspection, cfg.Introspection)
		if err != nil {
			return spec, err
		}
		spec.introspection = &ic
	case ownsGuardIntrospection:
		ic := cfg.Introspection
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
	if ic.MaxTTL == 0 {
		ic.MaxTTL = guard.MaxTTL
	}
	if ic.NegativeTTL == 0 {
		ic.NegativeTTL = guard.NegativeTTL
	}
	if ic.MaxConcurrent == 0 {
		ic.MaxConcurrent = guard.MaxConcurrent
	}
	if ic.JWTs == IntrospectJWTNever && guard.JWTs == IntrospectJWTAlways {
		ic.JWTs = IntrospectJWTAlways
	}
	return ic, nil
}

// checkRouting refuses a configuration in which an opaque token, which
// names no issuer, could not be sent to exactly one issuer.
func checkRouting(cfg Config, plan *issuerPlan) error {
	var unprefixed []string // issuers that introspect and claim no prefix
	prefixOwner := map[string]string{}
	for _, s := range plan.exact {
		if s.introspection == nil {
			continue
		}
		if len(s.introspection.TokenPrefixes) == 0 {
			unprefixed = append(unprefixed, s.id)
		}
		for _, p := range s.introspection.TokenPrefixes {
			if p == "" {
				return fmt.Errorf("tokenguard: issuer %s: empty TokenPrefixes entry", s.id)
			}
			prefixOwner[p] = s.id
		}
	}
	for _, p := range plan.patterns {
		if p.spec.introspection == nil {
			continue
		}
		if len(p.spec.introspection.TokenPrefixes) > 0 {
			return fmt.Errorf("tokenguard: issuer pattern %s: TokenPrefixes cannot say which tenant a token belongs to: set Config.RouteOpaque", p.spec.id)
		}
		unprefixed = append(unprefixed, p.spec.id)
	}
	if cfg.RouteOpaque != nil {
		if len(prefixOwner) > 0 {
			return errors.New("tokenguard: set Config.RouteOpaque or TokenPrefixes, not both")
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
