package tgfiber_test

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/tokenguard/tokenguard"
	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Optional lets a request without a token through with no Principal and
// judges one with a token as New does: the same cases as the core's
// Guard.Optional, with the same answers, and a refusal reaches no handler.
// A bad token is refused, never taken for anonymous.
func TestOptional(t *testing.T) {
	as, g := newGuard(t)
	var (
		reached   bool
		principal *tokenguard.Principal
	)
	app := fiber.New()
	app.Use(tgfiber.Optional(g))
	app.Get("/any", func(c fiber.Ctx) error {
		reached = true
		principal, _ = tgfiber.PrincipalFrom(c)
		return c.SendStatus(http.StatusOK)
	})
	core := g.Optional(nop)

	for _, tc := range []struct {
		name, auth string
		status     int
		principal  bool
		challenge  string
	}{
		{"anonymous", "", 200, false, ""},
		{"another scheme", "Basic YTpi", 200, false, ""},
		{"valid", "Bearer " + as.Mint(oauthtest.Claims{"sub": "alice"}), 200, true, ""},
		{"expired", "Bearer " + as.Mint(oauthtest.Claims{"exp": time.Now().Add(-time.Hour)}), 401, false, challenge(g, "invalid_token", "token expired")},
		{"forged", "Bearer " + forge(as.Mint(nil)), 401, false, challenge(g, "invalid_token", "invalid signature")},
		{"garbage", "Bearer not-a-token", 401, false, ""},
		{"revoked opaque", "Bearer " + func() string { tok := as.MintOpaque(nil); as.Revoke(tok); return tok }(), 401, false, challenge(g, "invalid_token", "token is not active")},
		{"empty", "Bearer ", 400, false, challenge(g, "invalid_request", "empty bearer token")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached, principal = false, nil
			w := send(tester{app}, tc.auth)
			if w.Code != tc.status || tc.challenge != "" && w.Header().Get("WWW-Authenticate") != tc.challenge {
				t.Errorf("%d %q, want %d %q", w.Code, w.Header().Get("WWW-Authenticate"), tc.status, tc.challenge)
			}
			if reached != (tc.status == 200) {
				t.Errorf("handler reached %v", reached)
			}
			if (principal != nil) != tc.principal || tc.principal && principal.Subject != "alice" {
				t.Errorf("principal %+v", principal)
			}
			if tc.status == 200 {
				return
			}
			want := send(core, tc.auth)
			if w.Code != want.Code || w.Body.String() != want.Body.String() ||
				!reflect.DeepEqual(w.Header().Values("WWW-Authenticate"), want.Header().Values("WWW-Authenticate")) {
				t.Errorf("fiber %d %q %s, core %d %q %s", w.Code, w.Header().Values("WWW-Authenticate"), w.Body, want.Code, want.Header().Values("WWW-Authenticate"), want.Body)
			}
		})
	}

	// A requirement after Optional still wants a token.
	app = fiber.New()
	app.Get("/any", tgfiber.Optional(g), tgfiber.RequireScopes(g, "x"), func(c fiber.Ctx) error {
		t.Error("handler reached")
		return nil
	})
	want := send(g.Optional(g.RequireScopes("x")(nop)), "")
	if w := send(tester{app}, ""); w.Code != 401 || w.Header().Get("WWW-Authenticate") != want.Header().Get("WWW-Authenticate") || w.Body.String() != want.Body.String() {
		t.Errorf("Optional then RequireScopes, anonymous: %d %q, core %d %q", w.Code, w.Header().Get("WWW-Authenticate"), want.Code, want.Header().Get("WWW-Authenticate"))
	}
}
