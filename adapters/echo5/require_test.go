package tgecho_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v5"

	"github.com/tokenguard/tokenguard"
	tgecho "github.com/tokenguard/tokenguard/adapters/echo5"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// A group requirement and a route requirement both apply, and each
// rejection is the core's own answer, byte for byte.
func TestRequireComposes(t *testing.T) {
	as, g := newGuard(t)
	groupReq := tokenguard.ClaimIs("tenant", "acme")
	routeReq := tokenguard.AnyScope("reports:read", "admin")
	e := echo.New()
	grp := e.Group("/t", tgecho.New(g), tgecho.Require(g, groupReq))
	grp.GET("/reports", func(c *echo.Context) error {
		p, _ := tgecho.PrincipalFrom(c)
		return c.String(http.StatusOK, p.Subject)
	}, tgecho.Require(g, routeReq))
	core := g.Handler(g.Require(groupReq)(g.Require(routeReq)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))))

	for _, tc := range []struct {
		name   string
		claims oauthtest.Claims
		status int
	}{
		{"both met", oauthtest.Claims{"sub": "ann", "tenant": "acme", "scope": "admin"}, 200},
		{"group requirement unmet", oauthtest.Claims{"tenant": "other", "scope": "admin"}, 403},
		{"route requirement unmet", oauthtest.Claims{"tenant": "acme", "scope": "orders:read"}, 403},
		{"no token", nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := ""
			if tc.claims != nil {
				auth = "Bearer " + as.Mint(tc.claims)
			}
			w := do(e, "/t/reports", auth)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status == 200 {
				if w.Body.String() != "ann" {
					t.Errorf("handler saw %q", w.Body.String())
				}
				return
			}
			sameAnswer(t, w, do(core, "/t/reports", auth))
		})
	}
}
