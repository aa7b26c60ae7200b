package tggin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tokenguard/tokenguard"
	tggin "github.com/tokenguard/tokenguard/adapters/gin"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// challenge is the exact WWW-Authenticate g sends for an error code and
// description.
func challenge(g *tokenguard.Guard, code, desc string) string {
	return `Bearer realm="` + g.Resource() + `", error="` + code + `", error_description="` + desc +
		`", resource_metadata="` + g.ResourceMetadataURL() + `"`
}

// Optional lets a request without a token through with no Principal and
// judges one with a token as New does: the same cases as the core's
// Guard.Optional, with the same answers, and a rejection aborts the chain.
func TestOptional(t *testing.T) {
	as, g := newGuard(t)
	var (
		reached, aborted bool
		principal        *tokenguard.Principal
		inRequest        *tokenguard.Principal
	)
	r := gin.New()
	r.Use(func(c *gin.Context) {
		c.Next()
		aborted = c.IsAborted()
	})
	r.Use(tggin.Optional(g))
	r.GET("/any", func(c *gin.Context) {
		reached = true
		principal, _ = tggin.PrincipalFrom(c)
		inRequest, _ = tokenguard.PrincipalFrom(c.Request.Context())
		if v, ok := c.Get(tggin.PrincipalKey); ok != (principal != nil) || (ok && v != any(principal)) {
			t.Errorf("PrincipalKey holds %v, %v", v, ok)
		}
		c.Status(http.StatusOK)
	})
	core := g.Optional(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))

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
			reached, aborted, principal, inRequest = false, false, nil, nil
			w := send(r, tc.auth)
			if w.Code != tc.status || w.Header().Get("WWW-Authenticate") != tc.challenge {
				t.Errorf("%d %q, want %d %q", w.Code, w.Header().Get("WWW-Authenticate"), tc.status, tc.challenge)
			}
			if reached != (tc.status == 200) || aborted != (tc.status != 200) {
				t.Errorf("handler reached %v, chain aborted %v", reached, aborted)
			}
			if (principal != nil) != tc.principal || inRequest != principal {
				t.Errorf("principal %v, in the request's context %v", principal, inRequest)
			}
			if tc.principal && principal.Subject != "alice" {
				t.Errorf("subject %q", principal.Subject)
			}
			if tc.status != 200 {
				want := send(core, tc.auth)
				if w.Code != want.Code || w.Body.String() != want.Body.String() || w.Header().Get("WWW-Authenticate") != want.Header().Get("WWW-Authenticate") {
					t.Errorf("gin %d %s, core %d %s", w.Code, w.Body, want.Code, want.Body)
				}
			}
		})
	}

	// A requirement after Optional still wants a token.
	r = gin.New()
	r.GET("/any", tggin.Optional(g), tggin.RequireScopes(g, "x"), func(c *gin.Context) { t.Error("handler reached") })
	want := send(g.Optional(g.RequireScopes("x")(http.NotFoundHandler())), "")
	if w := send(r, ""); w.Code != 401 || w.Header().Get("WWW-Authenticate") != want.Header().Get("WWW-Authenticate") || w.Body.String() != want.Body.String() {
		t.Errorf("Optional then RequireScopes, anonymous: %d %q, core %d %q", w.Code, w.Header().Get("WWW-Authenticate"), want.Code, want.Header().Get("WWW-Authenticate"))
	}
}

// send sends a GET for /any to h with the Authorization header auth (none
// if "").
func send(h http.Handler, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/any", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// forge breaks the signature of a JWT.
func forge(tok string) string { return tok[:len(tok)-4] + "AAAA" }
