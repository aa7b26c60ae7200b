package tggin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/tokenguard/tokenguard"
	tggin "github.com/tokenguard/tokenguard/adapters/gin"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestPrincipalFromUnauthenticated(t *testing.T) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
	if p, ok := tggin.PrincipalFrom(c); ok || p != nil {
		t.Errorf("PrincipalFrom = %v, %v on an unauthenticated context", p, ok)
	}

	// Neither does a context with no request, nor one whose key holds
	// something else.
	c, _ = gin.CreateTestContext(httptest.NewRecorder())
	if _, ok := tggin.PrincipalFrom(c); ok {
		t.Error("PrincipalFrom found a Principal in a context without a request")
	}
	c.Set(tggin.PrincipalKey, "not a principal")
	if _, ok := tggin.PrincipalFrom(c); ok {
		t.Error("PrincipalFrom accepted a string")
	}
	c.Set(tggin.PrincipalKey, (*tokenguard.Principal)(nil))
	if _, ok := tggin.PrincipalFrom(c); ok {
		t.Error("PrincipalFrom accepted a nil Principal")
	}
}

// A route outside the guard sees no Principal, even when the request
// carries a valid token.
func TestPrincipalFromUnguardedRoute(t *testing.T) {
	as, _ := newGuard(t)
	r := gin.New()
	r.GET("/open", subject)
	if w := do(r, "/open", as.Mint(nil)); w.Body.String() != "-" {
		t.Errorf("unguarded route saw %q", w.Body)
	}
}

// The request's context carries the same Principal as the gin context, for
// code that only sees the *http.Request.
func TestRequestContextCarriesPrincipal(t *testing.T) {
	as, g := newGuard(t)
	r := gin.New()
	r.Use(tggin.New(g))
	r.GET("/me", func(c *gin.Context) {
		p, ok := tggin.PrincipalFrom(c)
		rp, rok := tokenguard.PrincipalFrom(c.Request.Context())
		if !ok || !rok || p != rp {
			t.Errorf("gin context %p %v, request context %p %v", p, ok, rp, rok)
			c.Status(http.StatusInternalServerError)
			return
		}
		c.String(http.StatusOK, rp.Subject)
	})
	if w := do(r, "/me", as.Mint(oauthtest.Claims{"sub": "alice"})); w.Code != 200 || w.Body.String() != "alice" {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// PrincipalFrom also finds the Principal of a Guard.Handler wrapping the
// whole engine.
func TestPrincipalFromCoreHandler(t *testing.T) {
	as, g := newGuard(t)
	r := gin.New()
	r.GET("/me", subject)
	h := g.Handler(r)
	if w := do(h, "/me", as.Mint(oauthtest.Claims{"sub": "alice"})); w.Code != 200 || w.Body.String() != "alice" {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}
