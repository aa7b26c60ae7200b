package tggin

import (
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
