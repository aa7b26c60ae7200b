package tokenguard

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// Requirement is one condition a route puts on an authenticated token:
// scopes (AllScopes, AnyScope), claim values (ClaimIs) or your own
// predicate (Satisfies). Requirements are checked after authentication,
// never instead of it; Require takes several, and nested Require
// middleware (a group's and a route's) all apply.
type Requirement struct {
	check func(g *Guard, p *Principal) *Error
}

// AllScopes requires every one of scopes. A token without them gets 403
// insufficient_scope with scope="..." naming all of them (RFC 6750 §3.1),
// so the client can ask for them.
func AllScopes(scopes ...string) Requirement {
	need := slices.Clone(scopes)
	return Requirement{check: func(g *Guard, p *Principal) *Error {
		granted := p.Scopes
		for _, s := range need {
			if !slices.Contains(granted, s) {
				return errInsufficientScope(need)
			}
		}
		return nil
	}}
}

// AnyScope requires at least one of scopes. The 403 names all of them.
func AnyScope(scopes ...string) Requirement {
	need := slices.Clone(scopes)
	return Requirement{check: func(g *Guard, p *Principal) *Error {
		granted := p.Scopes
		for _, s := range need {
			if slices.Contains(granted, s) {
				return nil
			}
		}
		return errInsufficientScope(need)
	}}
}

// AnyRole requires at least one of roles in Principal.Roles (read from the
// issuer's TokenShape.RoleClaims). A token without one gets 403.
func AnyRole(roles ...string) Requirement {
	need := slices.Clone(roles)
	return Requirement{check: func(_ *Guard, p *Principal) *Error {
		for _, r := range need {
			if slices.Contains(p.Roles, r) {
				return nil
			}
		}
		return errForbidden(fmt.Errorf("none of the roles %q", need))
	}}
}

// AllRoles requires every one of roles in Principal.Roles. A token
// without them gets 403.
func AllRoles(roles ...string) Requirement {
	need := slices.Clone(roles)
	return Requirement{check: func(_ *Guard, p *Principal) *Error {
		for _, r := range need {
			if !slices.Contains(p.Roles, r) {
				return errForbidden(fmt.Errorf("role %q missing (required: %q)", r, need))
			}
		}
		return nil
	}}
}

// ClaimIs requires claim name to equal value: a string claim equal to it,
// or an array claim containing it. A token without it gets 403.
func ClaimIs(name, value string) Requirement {
	return Requirement{check: func(_ *Guard, p *Principal) *Error {
		if claimHas(p, name, value) {
			return nil
		}
		return errForbidden(fmt.Errorf("claim %s does not hold %q", name, value))
	}}
}

// Satisfies requires ok(p) to be true; desc names the rule in the
// operator's log. A token that fails it gets 403.
func Satisfies(desc string, ok func(p *Principal) bool) Requirement {
	return Requirement{check: func(_ *Guard, p *Principal) *Error {
		if ok(p) {
			return nil
		}
		return errForbidden(errors.New("requirement not met: " + desc))
	}}
}

func errForbidden(cause error) *Error {
	return &Error{
		Status:      http.StatusForbidden,
		Code:        CodeInsufficientScope,
		Description: "token does not meet this route's requirements",
		Err:         cause,
		Reason:      ReasonRequirementNotMet,
	}
}

// claimHas reports whether the token's claim name is value, or an array
// holding it.
func claimHas(p *Principal, name, value string) bool {
	var claims map[string]any
	if p.Claims(&claims) != nil {
		return false
	}
	switch v := claims[name].(type) {
	case string:
		return v == value
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s == value {
				return true
			}
		}
	}
	return false
}

// scopesFrom returns Principal.Scopes for a token whose claims JSON is
// claims and whose scope and scp claims make def: def itself, or with
// Config.ScopeClaim the values of that claim (a space-separated string or
// an array of strings; anything else grants none).
func (g *Guard) scopesFrom(claims []byte, def []string) []string {
	if g.cfg.ScopeClaim == "" {
		return def
	}
	m, err := decodeClaims(claims)
	if err != nil {
		return nil
	}
	raw, ok := m[g.cfg.ScopeClaim] // the name exactly: no dotted paths here
	if !ok {
		return nil
	}
	return claimStrings(raw)
}

// Require returns middleware that lets a request through only when its
// token meets every one of reqs; otherwise it answers 403 (insufficient_scope
// with the scopes needed, for scope requirements). It authenticates the
// request itself when no Handler of this Guard did before it.
func (g *Guard) Require(reqs ...Requirement) func(http.Handler) http.Handler {
	reqs = slices.Clone(reqs)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := g.Check(r, reqs...)
			if err != nil {
				g.WriteError(w, r, err)
				return
			}
			if cur, _ := PrincipalFrom(r.Context()); cur != p {
				r = r.WithContext(WithPrincipal(r.Context(), p))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Check returns the request's Principal when its token meets every one of
// reqs. It reuses the Principal a Handler of this Guard put in the
// request's context and otherwise authenticates the request. It writes
// nothing; on failure the error is an *Error for WriteError. Adapters use
// it for per-route requirements.
func (g *Guard) Check(r *http.Request, reqs ...Requirement) (*Principal, error) {
	p, ok := PrincipalFrom(r.Context())
	if !ok || p.guard != g {
		var err error
		if p, err = g.Authenticate(r); err != nil {
			return nil, err
		}
	}
	for _, req := range reqs {
		if req.check == nil {
			return nil, errForbidden(errors.New("zero Requirement: build requirements with AllScopes, AnyScope, ClaimIs or Satisfies"))
		}
		if e := req.check(g, p); e != nil {
			return nil, e
		}
	}
	return p, nil
}
