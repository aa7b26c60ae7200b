package tggin_test

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/tokenguard/tokenguard"
	tggin "github.com/tokenguard/tokenguard/adapters/gin"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// A rejection through gin is byte for byte what the core's Handler answers:
// gin adds no header and no body of its own, not even its 404 text for an
// unknown path.
func TestSameAnswerAsCore(t *testing.T) {
	as, g := newGuard(t)

	r := gin.New()
	r.Use(tggin.New(g))
	r.GET("/any", subject)
	r.GET("/scoped", tggin.RequireScopes(g, "orders:write"), subject)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /any", func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle("GET /scoped", g.RequireScopes("orders:write")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	core := g.Handler(mux)

	down := as.MintOpaque(nil)
	tests := []struct {
		name, path, token string
		status            int
		before            func()
	}{
		{name: "no token", path: "/any", status: 401},
		{name: "not a JWT", path: "/any", token: "e30.e30.e30", status: 401},
		{name: "expired", path: "/any", token: as.Mint(oauthtest.Claims{"exp": 1, "iat": 0}), status: 401},
		{name: "missing scope", path: "/scoped", token: as.Mint(oauthtest.Claims{"scope": "orders:read"}), status: 403},
		{name: "unknown path, no token", path: "/nope", status: 401},
		{name: "introspection down", path: "/any", token: down, status: 503, before: func() {
			as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			want := do(core, tc.path, tc.token)
			got := do(r, tc.path, tc.token)
			if want.Code != tc.status {
				t.Fatalf("core answered %d, want %d: the test is wrong", want.Code, tc.status)
			}
			if got.Code != want.Code {
				t.Errorf("status %d, core %d", got.Code, want.Code)
			}
			if !reflect.DeepEqual(got.Header(), want.Header()) {
				t.Errorf("headers\n got %v\n core %v", got.Header(), want.Header())
			}
			if got.Body.String() != want.Body.String() {
				t.Errorf("body\n got %q\n core %q", got.Body, want.Body)
			}
		})
	}
}

// A rejection aborts the chain: later handlers do not run, and middleware
// in front (a logger, say) sees the aborted context and the core's status.
func TestRejectionAborts(t *testing.T) {
	_, g := newGuard(t)
	var aborted bool
	var status int
	r := gin.New()
	r.Use(func(c *gin.Context) {
		c.Next()
		aborted, status = c.IsAborted(), c.Writer.Status()
	})
	r.Use(tggin.New(g))
	r.GET("/any", func(c *gin.Context) { t.Error("handler reached") })

	w := do(r, "/any", "")
	if w.Code != http.StatusUnauthorized || !aborted || status != http.StatusUnauthorized {
		t.Errorf("code %d, outer middleware saw aborted=%v status %d", w.Code, aborted, status)
	}
}

// The guard on a route group protects that group only; routes outside it
// stay open and see no Principal.
func TestGroup(t *testing.T) {
	as, g := newGuard(t)
	r := gin.New()
	r.GET("/health", subject)
	api := r.Group("/api", tggin.New(g))
	api.GET("/me", subject)
	api.GET("/orders/:id", func(c *gin.Context) {
		p, _ := tggin.PrincipalFrom(c)
		c.String(http.StatusOK, p.Subject+" "+c.Param("id"))
	})

	alice := as.Mint(oauthtest.Claims{"sub": "alice"})
	tests := []struct {
		name, path, token string
		status            int
		body              string
	}{
		{name: "public route, no token", path: "/health", status: 200, body: "-"},
		{name: "public route, with token", path: "/health", token: alice, status: 200, body: "-"},
		{name: "public route, bad token", path: "/health", token: "garbage", status: 200, body: "-"},
		{name: "group, no token", path: "/api/me", status: 401},
		{name: "group, bad token", path: "/api/me", token: "garbage", status: 401},
		{name: "group, valid token", path: "/api/me", token: alice, status: 200, body: "alice"},
		{name: "group, path parameter", path: "/api/orders/42", token: alice, status: 200, body: "alice 42"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(r, tc.path, tc.token)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tc.status, w.Body)
			}
			if tc.body != "" && w.Body.String() != tc.body {
				t.Errorf("body %q, want %q", w.Body, tc.body)
			}
			if tc.status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate on a 401")
			}
		})
	}
}

// RequireScopes with no New in front authenticates the request itself: a
// route is never left open by a forgotten New.
func TestRequireScopesWithoutNew(t *testing.T) {
	as, g := newGuard(t)
	r := gin.New()
	r.POST("/orders", tggin.RequireScopes(g, "orders:write"), func(c *gin.Context) {
		p, ok := tggin.PrincipalFrom(c)
		rp, rok := tokenguard.PrincipalFrom(c.Request.Context())
		if !ok || !rok || p != rp {
			t.Errorf("gin context %p %v, request context %p %v", p, ok, rp, rok)
			c.Status(http.StatusInternalServerError)
			return
		}
		c.String(http.StatusCreated, p.Subject)
	})

	// The 401 of a scope route names the scopes (RFC 6750 §3), so the client
	// asks for them.
	noTokenChallenge := `Bearer realm="` + g.Resource() + `", scope="orders:write", resource_metadata="` + g.ResourceMetadataURL() + `"`
	tests := []struct {
		name, token string
		status      int
		challenge   string
		body        string
	}{
		{name: "no token", status: 401, challenge: noTokenChallenge, body: `{"error_description":"bearer token required","scope":"orders:write"}` + "\n"},
		{name: "forged", token: as.Mint(nil) + "x", status: 401},
		{name: "opaque, revoked", token: func() string { tok := as.MintOpaque(nil); as.Revoke(tok); return tok }(), status: 401},
		{name: "missing scope", token: as.Mint(oauthtest.Claims{"scope": "orders:read"}), status: 403},
		{name: "scope granted", token: as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:write"}), status: 201, body: "alice"},
		{name: "opaque, scope granted", token: as.MintOpaque(oauthtest.Claims{"sub": "bob", "scope": "orders:write"}), status: 201, body: "bob"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/orders", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tc.status, w.Body)
			}
			if tc.challenge != "" && w.Header().Get("WWW-Authenticate") != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", w.Header().Get("WWW-Authenticate"), tc.challenge)
			}
			if tc.status >= 400 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate")
			}
			if tc.body != "" && w.Body.String() != tc.body {
				t.Errorf("body %q, want %q", w.Body, tc.body)
			}
		})
	}
}

// New followed by RequireScopes authenticates once: RequireScopes reuses
// New's Principal, and both contexts hold that same Principal.
func TestSamePrincipalEverywhere(t *testing.T) {
	as, g := newGuard(t)
	var fromNew *tokenguard.Principal
	r := gin.New()
	r.Use(tggin.New(g))
	r.Use(func(c *gin.Context) {
		fromNew, _ = tggin.PrincipalFrom(c)
		c.Next()
	})
	r.GET("/scoped", tggin.RequireScopes(g, "orders:write"), func(c *gin.Context) {
		p, ok := tggin.PrincipalFrom(c)
		rp, rok := tokenguard.PrincipalFrom(c.Request.Context())
		v, _ := c.Get(tggin.PrincipalKey)
		switch {
		case !ok || !rok:
			t.Errorf("gin context %v, request context %v", ok, rok)
		case p != rp || p != fromNew || v != any(p):
			t.Errorf("different principals: gin %p, request %p, New %p, key %v", p, rp, fromNew, v)
		}
		c.Status(http.StatusNoContent)
	})

	// An opaque token, so a second authentication would show as a second
	// introspection call.
	tok := as.MintOpaque(oauthtest.Claims{"scope": "orders:write"})
	if w := do(r, "/scoped", tok); w.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if n := as.Requests(oauthtest.EndpointIntrospect); n != 1 {
		t.Errorf("%d introspection calls, want 1", n)
	}
}
