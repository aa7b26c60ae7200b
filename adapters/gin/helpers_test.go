package tggin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/tokenguard/tokenguard"
	tggin "github.com/tokenguard/tokenguard/adapters/gin"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

const (
	rsClient, rsSecret = "tggin-test-rs", "tggin test secret"
)

// newGuard starts an authorization server and a Guard trusting it, with
// introspection for opaque tokens; both are closed when t ends.
func newGuard(t *testing.T) (*oauthtest.Server, *tokenguard.Guard) {
	t.Helper()
	as := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(as.Close)
	as.RegisterClient(rsClient, rsSecret)
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true,
		Introspection:       tokenguard.IntrospectionConfig{ClientID: rsClient, ClientSecret: rsSecret},
	})
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return as, g
}

// do sends a GET for path to h, with a bearer token unless token is "".
func do(h http.Handler, path, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// subject answers 200 with the subject PrincipalFrom finds, or "-".
func subject(c *gin.Context) {
	sub := "-"
	if p, ok := tggin.PrincipalFrom(c); ok {
		sub = p.Subject
	}
	c.String(http.StatusOK, sub)
}
