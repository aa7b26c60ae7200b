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
		iss, ok := g.issuers[id]
		if !ok && g.dynamic != nil {
			var e *Error
			if iss, e = g.lookupDynamic(ctx, id); e != nil {
				return nil, e
			}
			ok = iss != nil
		}
		if !ok || iss.intro == nil {
			return nil, errInvalidToken("token not recognised", errors.New("RouteOpaque named "+quote(id)+", which is not a trusted issuer that introspects"))
		}
		return iss, nil
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
	return nil, errInvalidToken("token not recognised", errors.New("the token starts with no issuer's TokenPrefixes, and no issuer takes opaque tokens without a prefix"))
}
