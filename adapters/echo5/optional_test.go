package tgecho_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"

	tgecho "github.com/tokenguard/tokenguard/adapters/echo5"
)

// challenge is the exact WWW-Authenticate g sends for an error code and
// description.
func challenge(g *tokenguard.Guard, code, desc string) string {
	return `Bearer realm="` + g.Resource() + `", error="` + code + `", error_description="` + desc +
		`", resource_metadata="` + g.ResourceMetadataURL() + `"`
}

// forge breaks the signature of a JWT.
func forge(tok string) string { return tok[:len(tok)-4] + "AAAA" }

// Optional lets a request without a token through with no Principal and
// judges one with a token as New does: the same cases as the core's
// Guard.Optional, with the same answers, and echo's error handler never
// sees a rejection.
func TestOptional(t *testing.T) {
	as, g := newGuard(t)
	var s seen
	var handled []error
	e := echo.New()
	def := echo.DefaultHTTPErrorHandler(false)
	e.HTTPErrorHandler = func(c *echo.Context, err error) {
		handled = append(handled, err)
		def(c, err)
	}
	e.Use(tgecho.Optional(g))
	e.GET("/any", s.handler)
	core := g.Optional(http.NotFoundHandler())

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
		{"empty", "Bearer ", 400, false, challenge(g, "invalid_request", "empty bearer token")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, handled = seen{}, nil
			w := do(e, "/any", tc.auth)
			if w.Code != tc.status || w.Header().Get("WWW-Authenticate") != tc.challenge {
				t.Errorf("%d %q, want %d %q", w.Code, w.Header().Get("WWW-Authenticate"), tc.status, tc.challenge)
			}
			if s.called != (tc.status == 200) {
				t.Errorf("handler reached: %v", s.called)
			}
			if s.ok != tc.principal || s.req != s.echo {
				t.Errorf("principal: echo %v %v, request %v", s.echo, s.ok, s.req)
			}
			if tc.principal && s.echo.Subject != "alice" {
				t.Errorf("subject %q", s.echo.Subject)
			}
			if len(handled) != 0 {
				t.Errorf("echo's error handler got %v", handled)
			}
			if tc.status != 200 {
				sameAnswer(t, w, do(core, "/any", tc.auth))
			}
		})
	}

	// A requirement after Optional still wants a token.
	s = seen{}
	e = echo.New()
	e.GET("/any", s.handler, tgecho.Optional(g), tgecho.RequireScopes(g, "x"))
	w := do(e, "/any", "")
	if w.Code != 401 || s.called {
		t.Errorf("Optional then RequireScopes, anonymous: %d, reached %v", w.Code, s.called)
	}
	sameAnswer(t, w, do(g.Optional(g.RequireScopes("x")(http.NotFoundHandler())), "/any", ""))
}
