package tgchi_test

import (
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Groups, sub-routers and mounted routers each guard their own routes only;
// public routes beside them stay open; URL parameters work behind the guard.
func TestRouting(t *testing.T) {
	as, g := newGuard(t)
	param := func(name string) func(*http.Request) string {
		return func(r *http.Request) string { return chi.URLParam(r, name) }
	}

	r := chi.NewRouter()
	r.Get("/health", who(nil))
	r.Handle(g.MetadataPath(), g.MetadataHandler())
	r.Group(func(r chi.Router) {
		r.Use(g.Handler)
		r.Get("/me", who(nil))
		r.With(g.RequireScopes("orders:write")).Post("/orders", who(nil))
	})
	r.Route("/v1", func(r chi.Router) {
		r.Get("/status", who(nil))
		r.Route("/orders", func(r chi.Router) {
			r.Use(g.Handler)
			r.Get("/{id}", who(param("id")))
			r.With(g.RequireScopes("orders:write")).Delete("/{id}", who(param("id")))
			r.With(g.Require(tokenguard.AnyScope("orders:admin", "support"))).Get("/{id}/audit", who(param("id")))
		})
	})
	api := chi.NewRouter()
	api.Use(g.Handler)
	api.Get("/items/{item}", who(param("item")))
	api.With(g.RequireScopes("items:write")).Put("/items/{item}", who(param("item")))
	r.Mount("/api", api)
	// RequireScopes with no Handler anywhere in front of it.
	r.With(g.RequireScopes("reports:read")).Get("/reports/{year}", who(param("year")))

	reader := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read"})
	writer := as.Mint(oauthtest.Claims{"sub": "bob", "scope": "orders:write items:write reports:read"})
	support := as.MintOpaque(oauthtest.Claims{"sub": "carol", "scope": "support"})

	tests := []struct {
		name, method, path, token string
		status                    int
		body                      string
	}{
		{"public route, no token", "GET", "/health", "", 200, "-"},
		{"public route, bad token", "GET", "/health", "garbage", 200, "-"},
		{"public route sees no Principal", "GET", "/health", reader, 200, "-"},
		{"metadata is public", "GET", g.MetadataPath(), "", 200, ""},
		{"group, no token", "GET", "/me", "", 401, ""},
		{"group, valid token", "GET", "/me", reader, 200, "alice"},
		{"group, scope missing", "POST", "/orders", reader, 403, ""},
		{"group, scope granted", "POST", "/orders", writer, 200, "bob"},
		{"sub-router, public route", "GET", "/v1/status", "", 200, "-"},
		{"sub-router, no token", "GET", "/v1/orders/7", "", 401, ""},
		{"sub-router, URL param", "GET", "/v1/orders/7", reader, 200, "alice 7"},
		{"sub-router, scope missing", "DELETE", "/v1/orders/7", reader, 403, ""},
		{"sub-router, scope granted, URL param", "DELETE", "/v1/orders/7", writer, 200, "bob 7"},
		{"sub-router, Require AnyScope met", "GET", "/v1/orders/7/audit", support, 200, "carol 7"},
		{"sub-router, Require AnyScope not met", "GET", "/v1/orders/7/audit", writer, 403, ""},
		{"mounted, no token", "GET", "/api/items/x1", "", 401, ""},
		{"mounted, URL param", "GET", "/api/items/x1", reader, 200, "alice x1"},
		{"mounted, scope missing", "PUT", "/api/items/x1", reader, 403, ""},
		{"mounted, scope granted", "PUT", "/api/items/x1", writer, 200, "bob x1"},
		{"mounted, unknown path, no token", "GET", "/api/nope", "", 401, ""},
		{"RequireScopes alone, no token", "GET", "/reports/2026", "", 401, ""},
		{"RequireScopes alone, scope missing", "GET", "/reports/2026", reader, 403, ""},
		{"RequireScopes alone, scope granted", "GET", "/reports/2026", writer, 200, "bob 2026"},
		{"unguarded unknown path", "GET", "/nope", "", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(r, tc.method, tc.path, tc.token)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tc.status, w.Body)
			}
			if tc.body != "" && w.Body.String() != tc.body {
				t.Errorf("body %q, want %q", w.Body, tc.body)
			}
			challenged := w.Header().Get("WWW-Authenticate") != ""
			if want := tc.status == 401 || tc.status == 403; challenged != want {
				t.Errorf("WWW-Authenticate %q on a %d", w.Header().Get("WWW-Authenticate"), w.Code)
			}
		})
	}
}

// r.Use(g.Handler) on the root router guards everything the router sees,
// unknown paths and CORS preflights included: that is why the package doc
// says to keep public routes off it.
func TestRootUseGuardsEverything(t *testing.T) {
	_, g := newGuard(t)
	r := chi.NewRouter()
	r.Use(g.Handler)
	r.Get("/health", who(nil))
	for _, tc := range []struct{ method, path string }{
		{"GET", "/health"},
		{"GET", "/nope"},
		{"POST", "/health"},
		{"OPTIONS", "/health"},
	} {
		if w := do(r, tc.method, tc.path, ""); w.Code != http.StatusUnauthorized {
			t.Errorf("%s %s: %d, want 401", tc.method, tc.path, w.Code)
		}
	}
}
