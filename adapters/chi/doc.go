// Package tgchi is how tokenguard is used with chi
// (github.com/go-chi/chi/v5), and the tests that prove it. It has no API of
// its own, because none is needed: chi middleware is
// func(http.Handler) http.Handler, which is exactly what the core's
// Guard.Handler, Guard.RequireScopes and Guard.Require are.
//
//	r := chi.NewRouter()
//	r.Get("/health", health)                        // public
//	r.Handle(g.MetadataPath(), g.MetadataHandler()) // public: the RFC 9728 metadata
//	r.Group(func(r chi.Router) {
//		r.Use(g.Handler) // a valid token on every route of the group
//		r.Get("/orders/{id}", getOrder)
//		r.With(g.RequireScopes("orders:write")).Post("/orders", createOrder)
//	})
//
// Handlers read the caller with tokenguard.PrincipalFrom(r.Context()).
// chi's routing context travels in the same request context, so
// chi.URLParam and chi.RouteContext work as usual behind the guard.
//
// Where to put the guard:
//
//   - r.Use(g.Handler) on a router guards every request that router sees,
//     including unknown paths, wrong methods and CORS preflight requests,
//     which carry no token. Keep public routes (health checks, the metadata
//     document) on a router or group without it, and put a CORS middleware
//     in front of the guard.
//   - r.Group and r.Route scope the guard to their routes; a router mounted
//     with r.Mount that uses the guard protects only its mount point.
//   - r.With(g.RequireScopes(...)) or r.With(g.Require(...)) adds a
//     per-route requirement. It reuses the Principal of a Handler of the
//     same Guard earlier in the chain and otherwise authenticates the request
//     itself, so a route is never left open by a missing Handler.
//
// Every decision and every rejection (status, WWW-Authenticate challenge,
// Retry-After and JSON body) is the core's; the tests run the conformance
// table of github.com/tokenguard/tokenguard/oauthtest/conformance through a
// chi router.
package tgchi
