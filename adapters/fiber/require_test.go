package tgfiber_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/gofiber/fiber/v3"

	"github.com/tokenguard/tokenguard"
	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// A group requirement and a route requirement both apply; a token that
// fails a claim requirement gets the core's 403 and reaches no handler; each
// refusal is the core's own answer, byte for byte.
func TestRequireComposes(t *testing.T) {
	as, g := newGuard(t)
	groupReq := tokenguard.ClaimIs("tenant", "acme")
	routeReq := tokenguard.AnyScope("reports:read", "admin")
	reached := 0
	app := fiber.New()
	grp := app.Group("/t", tgfiber.New(g), tgfiber.Require(g, groupReq))
	grp.Get("/reports", tgfiber.Require(g, routeReq), func(c fiber.Ctx) error {
		reached++
		return subject(c)
	})
	core := g.Handler(g.Require(groupReq)(g.Require(routeReq)(nop)))

	for _, tc := range []struct {
		name   string
		claims oauthtest.Claims
		status int
	}{
		{"both met", oauthtest.Claims{"sub": "ann", "tenant": "acme", "scope": "admin"}, 200},
		{"group claim unmet", oauthtest.Claims{"tenant": "other", "scope": "admin"}, 403},
		{"group claim absent", oauthtest.Claims{"scope": "admin"}, 403},
		{"group claim as an array", oauthtest.Claims{"sub": "ann", "tenant": []string{"x", "acme"}, "scope": "reports:read"}, 200},
		{"route requirement unmet", oauthtest.Claims{"tenant": "acme", "scope": "orders:read"}, 403},
		{"no token", nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached = 0
			tok := ""
			if tc.claims != nil {
				tok = as.Mint(tc.claims)
			}
			w := do(tester{app}, "/t/reports", tok)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if tc.status == 200 {
				if w.Body.String() != "ann" || reached != 1 {
					t.Errorf("handler saw %q, reached %d times", w.Body.String(), reached)
				}
				return
			}
			if reached != 0 {
				t.Error("handler reached on a refusal")
			}
			want := do(core, "/t/reports", tok)
			if !reflect.DeepEqual(w.Header().Values("WWW-Authenticate"), want.Header().Values("WWW-Authenticate")) || w.Body.String() != want.Body.String() {
				t.Errorf("fiber %s %s\ncore %s %s", w.Header().Get("WWW-Authenticate"), w.Body, want.Header().Get("WWW-Authenticate"), want.Body)
			}
		})
	}
}

// Require with a predicate of the application's (Satisfies), alone on a
// route: it authenticates the request and applies the predicate, 403 when
// it fails.
func TestRequireSatisfies(t *testing.T) {
	as, g := newGuard(t)
	app := fiber.New()
	app.Delete("/orders/:id", tgfiber.Require(g, tokenguard.Satisfies("owner of order 7", func(p *tokenguard.Principal) bool {
		return p.Subject == "owner-7"
	})), func(c fiber.Ctx) error { return c.SendStatus(http.StatusNoContent) })

	for sub, status := range map[string]int{"owner-7": 204, "someone": 403} {
		r := newReq(http.MethodDelete, "/orders/7", as.Mint(oauthtest.Claims{"sub": sub}))
		w := record(tester{app}, r)
		if w.Code != status {
			t.Errorf("%s: status %d, want %d", sub, w.Code, status)
		}
	}
}
