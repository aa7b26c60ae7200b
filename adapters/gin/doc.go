// Package tggin plugs tokenguard into gin.
//
//	import tggin "github.com/tokenguard/tokenguard/adapters/gin"
//
//	r := gin.New()
//	r.Use(tggin.New(g))                                               // every route needs a valid token
//	r.POST("/orders", tggin.RequireScopes(g, "orders:write"), create) // and this one a scope
//
// New authenticates each request with the Guard; Optional does the same for
// routes that serve anonymous callers too, letting a request with no token
// through without a Principal (a bad token is still refused); RequireScopes
// adds a per-route scope requirement as an ordinary gin handler. A handler
// reads the caller with PrincipalFrom(c), or with tokenguard.PrincipalFrom
// on c.Request.Context(), which carries the same Principal for code that
// only sees the *http.Request.
//
// The package makes no decision of its own. Whether a request passes, and
// the exact answer when it does not (the RFC 6750 status, the
// WWW-Authenticate challenge, Retry-After and the JSON body), come from the
// core: Guard.Authenticate, Guard.Authorize and Guard.WriteError, the same
// calls behind Guard.Handler. A rejected request is answered and the chain
// aborted, so no later handler runs and gin adds nothing to the response.
// The tests run the conformance table of
// github.com/tokenguard/tokenguard/oauthtest/conformance through gin.
//
// The package is named tggin so that it does not shadow gin itself.
package tggin
