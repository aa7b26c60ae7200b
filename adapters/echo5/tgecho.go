package tgecho

import (
	"errors"

	"github.com/labstack/echo/v5"
	"github.com/tokenguard/tokenguard"
)

// PrincipalKey is the echo context key under which New and RequireScopes
// store the request's *tokenguard.Principal. PrincipalFrom reads it.
const PrincipalKey = "tokenguard.principal"

// New returns echo middleware that lets a request through only when it
// carries a valid bearer token, with the Principal stored under
// PrincipalKey and in the request's context. Any other request gets the
// answer g.WriteError gives (401 with a challenge, 400 for a malformed
// request, 503 with Retry-After when the authorization server cannot be
// reached: fail closed); the handler is not called and the middleware
// returns nil, so echo's error handler does not touch the response.
//
// New panics if g is nil.
func New(g *tokenguard.Guard) echo.MiddlewareFunc {
	if g == nil {
		panic("tgecho: New with a nil Guard")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			p, err := g.Authenticate(c.Request())
			if err != nil {
				g.WriteError(c.Response(), c.Request(), err)
				return nil
			}
			store(c, p)
			return next(c)
		}
	}
}

// Optional is New for routes that serve anonymous callers too, as
// Guard.Optional is for net/http. A request with no token at all (also one
// whose Authorization header carries another scheme, such as Basic) goes on
// to the handler with nothing stored, so PrincipalFrom reports false. A
// request with a token is judged exactly as by New: on success the
// Principal is stored under PrincipalKey and in the request's context; a
// bad, expired or forged token gets the answer g.WriteError gives, the
// handler is not called and the middleware returns nil, so it never passes
// as anonymous. RequireScopes and Require after it still refuse an
// anonymous request with 401.
//
// Optional panics if g is nil.
func Optional(g *tokenguard.Guard) echo.MiddlewareFunc {
	if g == nil {
		panic("tgecho: Optional with a nil Guard")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			p, err := g.Authenticate(c.Request())
			switch {
			case err == nil:
				store(c, p)
			case errors.Is(err, tokenguard.ErrNoToken):
			default:
				g.WriteError(c.Response(), c.Request(), err)
				return nil
			}
			return next(c)
		}
	}
}

// RequireScopes returns echo middleware that lets a request through only
// when its token grants every one of scopes; a token without them gets
// 403 insufficient_scope naming them. It reuses the Principal that New
// with the same Guard stored for the request, and authenticates the
// request itself otherwise, so a route is never left open by a missing
// New. Like New, it answers failures with g.WriteError and returns nil.
//
// RequireScopes panics if g is nil.
func RequireScopes(g *tokenguard.Guard, scopes ...string) echo.MiddlewareFunc {
	if g == nil {
		panic("tgecho: RequireScopes with a nil Guard")
	}
	required := append([]string(nil), scopes...)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			p, err := g.Authorize(c.Request(), required...)
			if err != nil {
				g.WriteError(c.Response(), c.Request(), err)
				return nil
			}
			store(c, p)
			return next(c)
		}
	}
}

// Require returns echo middleware that lets a request through only when
// its token meets every one of reqs (tokenguard.AllScopes, AnyScope,
// ClaimIs, Satisfies); otherwise it answers as Guard.Check decides (403 for
// an unmet requirement) with g.WriteError and returns nil. Like
// RequireScopes it reuses New's Principal or authenticates the request
// itself. Group and route middleware compose: both apply.
//
// Require panics if g is nil.
func Require(g *tokenguard.Guard, reqs ...tokenguard.Requirement) echo.MiddlewareFunc {
	if g == nil {
		panic("tgecho: Require with a nil Guard")
	}
	reqs = append([]tokenguard.Requirement(nil), reqs...)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			p, err := g.Check(c.Request(), reqs...)
			if err != nil {
				g.WriteError(c.Response(), c.Request(), err)
				return nil
			}
			store(c, p)
			return next(c)
		}
	}
}

// PrincipalFrom returns the Principal that New, Optional or RequireScopes
// stored in c, and false when there is none (the request did not pass
// through them, or came to Optional without a token).
func PrincipalFrom(c *echo.Context) (*tokenguard.Principal, bool) {
	p, ok := c.Get(PrincipalKey).(*tokenguard.Principal)
	return p, ok && p != nil
}

// store puts p in the echo context and, unless it is already there, in the
// request's context.
func store(c *echo.Context, p *tokenguard.Principal) {
	c.Set(PrincipalKey, p)
	r := c.Request()
	if cur, _ := tokenguard.PrincipalFrom(r.Context()); cur != p {
		c.SetRequest(r.WithContext(tokenguard.WithPrincipal(r.Context(), p)))
	}
}
