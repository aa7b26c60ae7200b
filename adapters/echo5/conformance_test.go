package tgecho_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v5"
	"github.com/tokenguard/tokenguard/oauthtest/conformance"

	tgecho "github.com/tokenguard/tokenguard/adapters/echo5"
)

// probe is the conformance handler: it reports the Principal as echo
// exposes it.
func probe(s conformance.Setup) echo.HandlerFunc {
	return func(c *echo.Context) error {
		p, _ := tgecho.PrincipalFrom(c)
		s.Probe(c.Response(), p)
		return nil
	}
}

// The conformance table through echo: New for every route with e.Use,
// RequireScopes as route middleware on the scoped route.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(_ testing.TB, s conformance.Setup) http.Handler {
		e := echo.New()
		e.Use(tgecho.New(s.Guard))
		e.GET(conformance.PathAny, probe(s))
		e.GET(conformance.PathScoped, probe(s), tgecho.RequireScopes(s.Guard, conformance.ScopeRequired))
		return e
	})
}

// The same table with route middleware only and no New in front of
// RequireScopes, which then authenticates by itself.
func TestConformanceRouteMiddleware(t *testing.T) {
	conformance.Run(t, func(_ testing.TB, s conformance.Setup) http.Handler {
		e := echo.New()
		e.GET(conformance.PathAny, probe(s), tgecho.New(s.Guard))
		e.GET(conformance.PathScoped, probe(s), tgecho.RequireScopes(s.Guard, conformance.ScopeRequired))
		return e
	})
}
