package tokenguard

import (
	"context"
	"errors"
	"strings"
)

// opaqueRouter decides which issuer an opaque token goes to. An opaque
// token names no issuer, so the configuration must: Config.RouteOpaque, or
// else the issuer whose TokenPrefixes the token starts with, or else the
// one issuer that introspects without TokenPrefixes. A token the route
// does not place is sent nowhere.
type opaqueRouter struct {
	hook     func(token string) string
	prefixes []routePrefix
	rest     *issuer // the one issuer that introspects without prefixes; nil if none or several
}

type routePrefix struct {
	prefix string
	iss    *issuer
}

// routeOpaque returns the issuer that judges an opaque token.
func (g *Guard) routeOpaque(ctx context.Context, token string) (*issuer, *Error) {
	r := &g.router
	switch {
	case r.hook != nil:
		id := r.hook(token)
		if id == "" {
			return nil, errInvalidToken("token not recognised", errors.New("RouteOpaque named no issuer for this token"))
		}
		return g.introspectingIssuer(ctx, id, "RouteOpaque")
	case len(r.prefixes) > 0:
		for _, p := range r.prefixes {
			if strings.HasPrefix(token, p.prefix) {
				return p.iss, nil
			}
		}
	}
	if r.rest != nil {
		return r.rest, nil
	}
	return nil, errInvalidToken("token not recognised", errors.New("no route for this opaque token: it starts with no issuer's TokenPrefixes, no single issuer takes the others, and Config.RouteOpaque is not set"))
}

// introspectingIssuer returns the trusted issuer id if it introspects,
// discovering a pattern issuer only when its pattern introspects. by names
// who chose id, for the operator.
func (g *Guard) introspectingIssuer(ctx context.Context, id, by string) (*issuer, *Error) {
	if iss, ok := g.issuers[id]; ok {
		if iss.intro == nil {
			return nil, errInvalidToken("token not recognised", errors.New(by+" named issuer "+quote(id)+", which does not introspect"))
		}
		return iss, nil
	}
	if g.dynamic != nil {
		if spec, ok := g.dynamic.specFor(id); ok {
			if spec.introspection == nil {
				return nil, errInvalidToken("token not recognised", errors.New(by+" named issuer "+quote(id)+", whose pattern does not introspect"))
			}
			iss, e := g.lookupDynamic(ctx, id)
			if e != nil {
				return nil, e
			}
			return iss, nil
		}
	}
	// Not quoted: id may be anything, even a piece of the token.
	return nil, errInvalidToken("token not recognised", errors.New(by+" named an issuer that is not trusted"))
}
