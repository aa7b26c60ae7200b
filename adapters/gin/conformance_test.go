package tggin_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	tggin "github.com/tokenguard/tokenguard/adapters/gin"
	"github.com/tokenguard/tokenguard/oauthtest/conformance"
)

// probe is the conformance handler: it reports the Principal as gin code
// sees it.
func probe(s conformance.Setup) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, _ := tggin.PrincipalFrom(c)
		s.Probe(c.Writer, p)
	}
}

// The conformance table through gin: New for the whole engine,
// RequireScopes as a route handler.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(_ testing.TB, s conformance.Setup) http.Handler {
		r := gin.New()
		r.Use(tggin.New(s.Guard))
		r.GET(conformance.PathAny, probe(s))
		r.GET(conformance.PathScoped, tggin.RequireScopes(s.Guard, conformance.ScopeRequired), probe(s))
		return r
	})
}

// The table again with the guard per route and RequireScopes alone on the
// scoped route, so it authenticates by itself.
func TestConformancePerRoute(t *testing.T) {
	conformance.Run(t, func(_ testing.TB, s conformance.Setup) http.Handler {
		r := gin.New()
		r.GET(conformance.PathAny, tggin.New(s.Guard), probe(s))
		r.GET(conformance.PathScoped, tggin.RequireScopes(s.Guard, conformance.ScopeRequired), probe(s))
		return r
	})
}

// The table once more inside a route group that carries the guard.
func TestConformanceGroup(t *testing.T) {
	conformance.Run(t, func(_ testing.TB, s conformance.Setup) http.Handler {
		r := gin.New()
		api := r.Group("/", tggin.New(s.Guard))
		api.GET(conformance.PathAny, probe(s))
		api.Group("/", tggin.RequireScopes(s.Guard, conformance.ScopeRequired)).GET(conformance.PathScoped, probe(s))
		return r
	})
}
