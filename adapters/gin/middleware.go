package tggin

import (
	"errors"

	"github.com/gin-gonic/gin"

	"github.com/tokenguard/tokenguard"
)

// New returns gin middleware that lets a request through only with a valid
// bearer token. It stores the Principal in the gin context under
// PrincipalKey and in the request's context (tokenguard.PrincipalFrom),
// then calls the next handler. Any other request gets the answer
// Guard.WriteError writes (401 with a challenge, 400 for a malformed
// request, or 503 with Retry-After when the authorization server cannot be
// reached: fail closed) and the chain is aborted.
func New(g *tokenguard.Guard) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := g.Authenticate(c.Request)
		if err != nil {
			reject(c, g, err)
			return
		}
		store(c, p)
		c.Next()
	}
}

// Optional is New for routes that serve anonymous callers too, as
// Guard.Optional is for net/http. A request with no token at all (also one
// whose Authorization header carries another scheme, such as Basic) goes on
// to the next handler with nothing stored, so PrincipalFrom reports false.
// A request with a token is judged exactly as by New: on success the
// Principal is stored under PrincipalKey and in the request's context; a
// bad, expired or forged token gets the answer Guard.WriteError writes and
// the chain is aborted, so it never passes as anonymous. RequireScopes and
// Require after it still refuse an anonymous request with 401.
func Optional(g *tokenguard.Guard) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := g.Authenticate(c.Request)
		switch {
		case err == nil:
			store(c, p)
		case errors.Is(err, tokenguard.ErrNoToken):
		default:
			reject(c, g, err)
			return
		}
		c.Next()
	}
}

// RequireScopes returns a gin handler that lets a request through only when
// its token grants every one of scopes; otherwise it answers 403
// insufficient_scope naming them, and aborts the chain. It reuses the
// Principal that New of the same Guard put in the request's context, and
// authenticates the request itself otherwise, so a route is never left open
// by a missing New. Use it per route or per group:
//
//	r.DELETE("/orders/:id", tggin.RequireScopes(g, "orders:write"), del)
func RequireScopes(g *tokenguard.Guard, scopes ...string) gin.HandlerFunc {
	required := append([]string(nil), scopes...)
	return func(c *gin.Context) {
		p, err := g.Authorize(c.Request, required...)
		if err != nil {
			reject(c, g, err)
			return
		}
		store(c, p)
		c.Next()
	}
}

// Require returns a gin handler that lets a request through only when its
// token meets every one of reqs (tokenguard.AllScopes, AnyScope, ClaimIs,
// Satisfies); otherwise it answers as Guard.Check decides (403 for an unmet
// requirement) and aborts the chain. Like RequireScopes it reuses New's
// Principal or authenticates the request itself. Group and route handlers
// compose: both apply.
func Require(g *tokenguard.Guard, reqs ...tokenguard.Requirement) gin.HandlerFunc {
	reqs = append([]tokenguard.Requirement(nil), reqs...)
	return func(c *gin.Context) {
		p, err := g.Check(c.Request, reqs...)
		if err != nil {
			reject(c, g, err)
			return
		}
		store(c, p)
		c.Next()
	}
}

// reject answers exactly as the core does and stops the chain. WriteError
// writes the status, headers and body itself; Abort only keeps the pending
// handlers from running.
func reject(c *gin.Context, g *tokenguard.Guard, err error) {
	g.WriteError(c.Writer, c.Request, err)
	c.Abort()
}

// store puts p in the gin context and, unless it is already there, in the
// request's context.
func store(c *gin.Context, p *tokenguard.Principal) {
	c.Set(PrincipalKey, p)
	if cur, _ := tokenguard.PrincipalFrom(c.Request.Context()); cur != p {
		c.Request = c.Request.WithContext(tokenguard.WithPrincipal(c.Request.Context(), p))
	}
}
