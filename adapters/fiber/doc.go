// Package tgfiber plugs tokenguard into Fiber v3 (github.com/gofiber/fiber/v3).
//
//	import tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
//
//	app := fiber.New()
//	app.Use(tgfiber.New(g))                                               // every route needs a valid token
//	app.Post("/orders", tgfiber.RequireScopes(g, "orders:write"), create) // and this one a scope
//
// New authenticates each request with the Guard; Optional does the same for
// routes that serve anonymous callers too, letting a request with no token
// through without a Principal (a bad token is still refused); RequireScopes
// and Require add per-route or per-group requirements, and authenticate the
// request themselves when no New ran before them. A handler reads the
// caller with PrincipalFrom(c). The Principal lives in c.Context(), Fiber
// v3's context.Context of the request, so code handed that context (a
// service, a repository) finds it with tokenguard.PrincipalFrom. The
// fiber.Ctx itself is a context.Context too, but one whose Value reads
// c.Locals: tokenguard.PrincipalFrom(c) finds nothing in it.
//
// The package makes no decision of its own. fasthttp, under Fiber, has no
// *http.Request, so each entry point builds the one net/http's server would
// have made of the same bytes (method, request-target, Host, every header
// value in order, repeated fields included, the DPoP header, the TLS state
// of the connection for certificate-bound tokens, the body when the Guard
// reads form tokens) and hands it to the core: Guard.Authenticate,
// Guard.Authorize or Guard.Check, the calls behind Guard.Handler. A refusal
// is written as Guard.WriteError writes it (the RFC 6750 status, every
// WWW-Authenticate value as a field of its own, as with DPoP allowed,
// Retry-After, Cache-Control, the body and its Content-Type), the next
// handlers do not run, and the middleware returns nil, so Fiber's error
// handler adds nothing. An accepted request in the DPoP scheme gets the
// Guard's current DPoP-Nonce, as Guard.Handler sends it. The tests run the conformance table of
// github.com/tokenguard/tokenguard/oauthtest/conformance through a real
// fasthttp server on loopback, and through app.Test.
//
// What the request holds is copied: fasthttp reuses its buffers and its
// request context for the next request on a keep-alive connection, and
// nothing of one request (its Principal included) is visible to the next.
// Building the request costs about a microsecond and seven allocations;
// each entry point builds its own, so a route that needs only a
// requirement is cheapest with Require (or RequireScopes) alone, which
// authenticates by itself.
//
// The package is named tgfiber so that it does not shadow fiber itself.
package tgfiber
