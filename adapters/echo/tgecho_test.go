package tgecho_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"

	tgecho "github.com/tokenguard/tokenguard/adapters/echo"
)

// newGuard starts an authorization server and a Guard that trusts it.
func newGuard(t *testing.T) (*oauthtest.Server, *tokenguard.Guard) {
	t.Helper()
	as := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(as.Close)
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true,
	})
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return as, g
}

// do sends a GET for path with the Authorization header auth (none if "").
func do(h http.Handler, path, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// sameAnswer fails t unless got is, header for header and byte for byte,
// the answer the core's own net/http middleware gave (want).
func sameAnswer(t *testing.T, got, want *httptest.ResponseRecorder) {
	t.Helper()
	if got.Code != want.Code {
		t.Errorf("status %d, core %d", got.Code, want.Code)
	}
	for _, h := range []string{"WWW-Authenticate", "Retry-After", "Content-Type", "Cache-Control"} {
		if g, w := got.Header().Values(h), want.Header().Values(h); strings.Join(g, "\n") != strings.Join(w, "\n") {
			t.Errorf("%s %q, core %q", h, g, w)
		}
	}
	if got.Body.String() != want.Body.String() {
		t.Errorf("body %q, core %q", got.Body, want.Body)
	}
}

// seen records what a handler saw.
type seen struct {
	called bool
	echo   *tokenguard.Principal // from tgecho.PrincipalFrom
	ok     bool
	req    *tokenguard.Principal // from the request's context
}

func (s *seen) handler(c echo.Context) error {
	s.called = true
	s.echo, s.ok = tgecho.PrincipalFrom(c)
	s.req, _ = tokenguard.PrincipalFrom(c.Request().Context())
	return c.String(http.StatusOK, "ok")
}

// A guard on a group protects the group's routes only.
func TestGroup(t *testing.T) {
	as, g := newGuard(t)
	var s seen
	e := echo.New()
	e.GET("/public", s.handler)
	api := e.Group("/api", tgecho.New(g))
	api.GET("/orders", s.handler)
	api.POST("/orders", s.handler, tgecho.RequireScopes(g, "orders:write"))
	token := "Bearer " + as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read"})

	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
		reached, principal       bool
	}{
		{"outside the group, no token", http.MethodGet, "/public", "", 200, true, false},
		{"outside the group, token", http.MethodGet, "/public", token, 200, true, false},
		{"in the group, no token", http.MethodGet, "/api/orders", "", 401, false, false},
		{"in the group, token", http.MethodGet, "/api/orders", token, 200, true, true},
		{"in the group, scope missing", http.MethodPost, "/api/orders", token, 403, false, false},
		// echo runs a group's middleware for unmatched paths under it too,
		// so the guard answers before the 404.
		{"unknown route in the group, no token", http.MethodGet, "/api/nothing", "", 401, false, false},
		{"unknown route in the group, token", http.MethodGet, "/api/nothing", token, 404, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s = seen{}
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			e.ServeHTTP(w, r)
			if w.Code != tc.status || s.called != tc.reached || s.ok != tc.principal {
				t.Errorf("status %d reached %v principal %v, want %d %v %v (body %s)",
					w.Code, s.called, s.ok, tc.status, tc.reached, tc.principal, w.Body)
			}
			if tc.principal && s.echo.Subject != "alice" {
				t.Errorf("subject %q", s.echo.Subject)
			}
		})
	}
}

// RequireScopes with no New in front authenticates the request itself,
// and answers exactly as the core's RequireScopes does.
func TestRequireScopesWithoutNew(t *testing.T) {
	as, g := newGuard(t)
	var s seen
	e := echo.New()
	e.GET("/orders", s.handler, tgecho.RequireScopes(g, "orders:read", "orders:write"))
	core := g.RequireScopes("orders:read", "orders:write")(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))

	for _, tc := range []struct {
		name, auth string
		status     int
	}{
		{"no token", "", 401},
		{"invalid token", "Bearer not-a-token", 401},
		{"scope missing", "Bearer " + as.Mint(oauthtest.Claims{"scope": "orders:read"}), 403},
		{"all scopes", "Bearer " + as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:write orders:read"}), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s = seen{}
			w := do(e, "/orders", tc.auth)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tc.status, w.Body)
			}
			if tc.status != 200 {
				sameAnswer(t, w, do(core, "/orders", tc.auth))
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Error("no challenge")
				}
			}
			if s.called != (tc.status == 200) {
				t.Errorf("handler reached: %v", s.called)
			}
			if tc.status == 200 && (!s.ok || s.echo != s.req || s.echo.Subject != "alice") {
				t.Errorf("principal: echo %v, request %v", s.echo, s.req)
			}
		})
	}
}

// On a route with no guard, PrincipalFrom reports none.
func TestPrincipalFromUnauthenticated(t *testing.T) {
	as, _ := newGuard(t)
	var s seen
	e := echo.New()
	e.GET("/open", s.handler)
	for _, auth := range []string{"", "Bearer " + as.Mint(nil)} {
		s = seen{}
		if w := do(e, "/open", auth); w.Code != 200 || !s.called {
			t.Fatalf("%d reached %v", w.Code, s.called)
		}
		if s.ok || s.echo != nil || s.req != nil {
			t.Errorf("auth %q: PrincipalFrom %v %v, request context %v", auth, s.echo, s.ok, s.req)
		}
	}
	// A value of another type under the key is not a Principal.
	c := echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
	c.Set(tgecho.PrincipalKey, "alice")
	if p, ok := tgecho.PrincipalFrom(c); ok || p != nil {
		t.Errorf("PrincipalFrom a string: %v %v", p, ok)
	}
}

// The request's context carries the very Principal stored in the echo
// context, and RequireScopes after New reuses it instead of authenticating
// again.
func TestRequestContextCarriesPrincipal(t *testing.T) {
	as, g := newGuard(t)
	var s seen
	var fromNew *tokenguard.Principal
	e := echo.New()
	e.Use(tgecho.New(g))
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			fromNew, _ = tgecho.PrincipalFrom(c)
			return next(c)
		}
	})
	e.GET("/any", s.handler)
	e.GET("/scoped", s.handler, tgecho.RequireScopes(g, "orders:write"))

	for _, path := range []string{"/any", "/scoped"} {
		s, fromNew = seen{}, nil
		w := do(e, path, "Bearer "+as.Mint(oauthtest.Claims{"sub": "carol", "scope": "orders:write"}))
		if w.Code != 200 || !s.ok || s.echo.Subject != "carol" {
			t.Fatalf("%s: %d, principal %v", path, w.Code, s.echo)
		}
		if s.req != s.echo {
			t.Errorf("%s: request context has %p, echo context %p", path, s.req, s.echo)
		}
		if s.echo != fromNew {
			t.Errorf("%s: the handler sees %p, New stored %p", path, s.echo, fromNew)
		}
	}
}

// A rejection is written once, by the core: echo's HTTPErrorHandler is not
// called, the chain stops, and echo's Response records the status for
// middleware such as loggers.
func TestRejectionBypassesEchoErrorHandler(t *testing.T) {
	_, g := newGuard(t)
	var s seen
	var handled []error
	var status int
	var committed bool
	e := echo.New()
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		handled = append(handled, err)
		e.DefaultHTTPErrorHandler(err, c)
	}
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			status, committed = c.Response().Status, c.Response().Committed
			return err
		}
	})
	e.Use(tgecho.New(g))
	e.GET("/any", s.handler)

	w := do(e, "/any", "Bearer a b")
	if w.Code != http.StatusBadRequest || s.called {
		t.Fatalf("%d reached %v", w.Code, s.called)
	}
	if len(handled) != 0 {
		t.Errorf("echo's error handler got %v", handled)
	}
	if status != http.StatusBadRequest || !committed {
		t.Errorf("echo Response: status %d committed %v", status, committed)
	}
	sameAnswer(t, w, do(g.Handler(http.NotFoundHandler()), "/any", "Bearer a b"))
}

func TestNilGuardPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"New":           func() { tgecho.New(nil) },
		"Optional":      func() { tgecho.Optional(nil) },
		"RequireScopes": func() { tgecho.RequireScopes(nil, "a") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}
