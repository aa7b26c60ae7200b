// Package tgecho protects echo v5 routes with a tokenguard.Guard.
//
// This module, github.com/tokenguard/tokenguard/adapters/echo5, is for
// github.com/labstack/echo/v5. For echo v4 use the sibling module
// github.com/tokenguard/tokenguard/adapters/echo, which has the same API
// with echo.Context in place of *echo.Context. Both packages are named
// tgecho so that neither shadows echo. (The module is a sibling directory,
// not adapters/echo/v5, because that path would read as the next major
// version of the echo v4 adapter.)
//
// New authenticates every request of the routes it is attached to (with
// e.Use, a group's Use, or as route middleware); Optional does the same
// for routes that serve anonymous callers too, letting a request with no
// token through without a Principal (a bad token is still refused);
// RequireScopes adds a per-route scope requirement. None makes a decision
// of its own: they call the Guard's Authenticate or Authorize and, on
// failure, its WriteError, so the client gets exactly the status,
// WWW-Authenticate, Retry-After and JSON body that tokenguard.Guard.Handler
// would send. The middleware then returns nil, so echo's HTTPErrorHandler
// writes nothing more and the rest of the chain is not run.
//
// On success the Principal is stored both in the echo context, under
// PrincipalKey (read it with PrincipalFrom), and in the request's context
// (read it with tokenguard.PrincipalFrom), so net/http code called from
// an echo handler sees it too.
package tgecho
