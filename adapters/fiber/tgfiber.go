package tgfiber

import (
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v3"

	"github.com/tokenguard/tokenguard"
)

// New returns Fiber middleware that lets a request through only with a
// valid bearer token (or DPoP-bound token, when the Guard allows DPoP). It
// puts the Principal in the request's Fiber context (c.Context(), where
// PrincipalFrom and tokenguard.PrincipalFrom find it), then calls c.Next.
// Any other request gets the answer Guard.WriteError writes (401 with a
// challenge, 400 for a malformed request, or 503 with Retry-After when the
// authorization server cannot be reached: fail closed), the next handlers
// are not called, and the middleware returns nil, so Fiber's error handler
// adds nothing to it.
//
// New panics if g is nil.
func New(g *tokenguard.Guard) fiber.Handler {
	if g == nil {
		panic("tgfiber: New with a nil Guard")
	}
	return func(c fiber.Ctx) error {
		return judge(c, g, false, func(r *http.Request) (*tokenguard.Principal, error) {
			return g.Authenticate(r)
		})
	}
}

// Optional is New for routes that serve anonymous callers too, as
// Guard.Optional is for net/http. A request with no token at all (also one
// whose Authorization header carries another scheme, such as Basic) goes on
// to the next handler with no Principal, so PrincipalFrom reports false. A
// request with a token is judged exactly as by New: on success the
// Principal is stored; a bad, expired or forged token gets the answer
// Guard.WriteError writes and the next handlers are not called, so it
// never passes as anonymous. RequireScopes and Require after it still
// refuse an anonymous request with 401.
//
// Optional panics if g is nil.
func Optional(g *tokenguard.Guard) fiber.Handler {
	if g == nil {
		panic("tgfiber: Optional with a nil Guard")
	}
	return func(c fiber.Ctx) error {
		return judge(c, g, true, func(r *http.Request) (*tokenguard.Principal, error) {
			return g.Authenticate(r)
		})
	}
}

// RequireScopes returns Fiber middleware that lets a request through only
// when its token grants every one of scopes; a token without them gets
// 403 insufficient_scope naming them. It reuses the Principal that New of
// the same Guard stored for the request, and authenticates the request
// itself otherwise, so a route is never left open by a missing New. Use
// it per route or per group:
//
//	app.Delete("/orders/:id", del, tgfiber.RequireScopes(g, "orders:write"))
//
// RequireScopes panics if g is nil.
func RequireScopes(g *tokenguard.Guard, scopes ...string) fiber.Handler {
	if g == nil {
		panic("tgfiber: RequireScopes with a nil Guard")
	}
	required := append([]string(nil), scopes...)
	return func(c fiber.Ctx) error {
		return judge(c, g, false, func(r *http.Request) (*tokenguard.Principal, error) {
			return g.Authorize(r, required...)
		})
	}
}

// Require returns Fiber middleware that lets a request through only when
// its token meets every one of reqs (tokenguard.AllScopes, AnyScope,
// ClaimIs, Satisfies, ...); otherwise it answers as Guard.Check decides
// (403 for an unmet requirement). Like RequireScopes it reuses New's
// Principal or authenticates the request itself. A group's and a route's
// Require compose: both apply.
//
// Require panics if g is nil.
func Require(g *tokenguard.Guard, reqs ...tokenguard.Requirement) fiber.Handler {
	if g == nil {
		panic("tgfiber: Require with a nil Guard")
	}
	reqs = append([]tokenguard.Requirement(nil), reqs...)
	return func(c fiber.Ctx) error {
		return judge(c, g, false, func(r *http.Request) (*tokenguard.Principal, error) {
			return g.Check(r, reqs...)
		})
	}
}

// PrincipalFrom returns the Principal that New, Optional, RequireScopes or
// Require stored for the request c serves, and false when there is none
// (the request did not pass through them, or came to Optional without a
// token). It reads c.Context(): code that has only that context.Context
// (c.Context() passed down to a service) finds the same Principal with
// tokenguard.PrincipalFrom.
//
// Beware that a fiber.Ctx is itself a context.Context whose Value reads
// c.Locals: tokenguard.PrincipalFrom(c) finds nothing there. Pass
// c.Context().
func PrincipalFrom(c fiber.Ctx) (*tokenguard.Principal, bool) {
	if c == nil {
		return nil, false
	}
	return tokenguard.PrincipalFrom(c.Context())
}

// judge runs decide, the core's decision, on the request c serves. On
// success it stores the Principal and calls the next handler; a request
// without a token goes on anonymous when optional is set; any other
// refusal is written as the core writes it.
func judge(c fiber.Ctx, g *tokenguard.Guard, optional bool, decide func(*http.Request) (*tokenguard.Principal, error)) error {
	r, body, err := newRequest(c)
	if err != nil {
		// net/http's server answers such a request 400 before any handler
		// runs; no handler may run here either.
		return fiber.ErrBadRequest
	}
	p, err := decide(r)
	switch {
	case err == nil:
		body.detach()
		store(c, g, r, p)
	case optional && errors.Is(err, tokenguard.ErrNoToken):
		body.detach()
	default:
		w := newResponseWriter(c.Response())
		g.WriteError(w, r, err)
		w.finish()
		body.detach()
		return nil
	}
	return c.Next()
}

// store puts p in c's Fiber context, unless it is already there. A request
// that p was authenticated for here, in the DPoP scheme, gets the Guard's
// current DPoP nonce, when it issues nonces, as Guard.Handler sends it: the
// client moves to it before the one it used expires (RFC 9449 §8.2).
func store(c fiber.Ctx, g *tokenguard.Guard, r *http.Request, p *tokenguard.Principal) {
	ctx := c.Context()
	if cur, _ := tokenguard.PrincipalFrom(ctx); cur == p {
		return
	}
	if n := g.AcceptedNonce(r); n != "" {
		c.Set("DPoP-Nonce", n)
	}
	c.SetContext(tokenguard.WithPrincipal(ctx, p))
}
