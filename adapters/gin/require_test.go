package tggin_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/tokenguard/tokenguard"
	tggin "github.com/tokenguard/tokenguard/adapters/gin"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// A group requirement and a route requirement both apply, and each
// rejection is the core's own answer, byte for byte.
func TestRequireComposes(t *testing.T) {
	as, g := newGuard(t)
	groupReq := tokenguard.ClaimIs("tenant", "acme")
	routeReq := tokenguard.AnyScope("reports:read", "admin")
	r := gin.New()
	grp := r.Group("/t", tggin.New(g), tggin.Require(g, groupReq))
	grp.GET("/reports", tggin.Require(g, routeReq), subject)
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
			tok := ""
			if tc.claims != nil {
				tok = as.Mint(tc.claims)
			}
			w := do(r, "/t/reports", tok)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status == 200 {
				if w.Body.String() != "ann" {
					t.Errorf("handler saw %q", w.Body.String())
				}
				return
			}
			want := do(core, "/t/reports", tok)
			if w.Header().Get("WWW-Authenticate") != want.Header().Get("WWW-Authenticate") || w.Body.String() != want.Body.String() {
				t.Errorf("gin %s %s\ncore %s %s", w.Header().Get("WWW-Authenticate"), w.Body, want.Header().Get("WWW-Authenticate"), want.Body)
			}
		})
	}
}
