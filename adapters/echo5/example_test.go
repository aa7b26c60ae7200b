package tgecho_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v5"
	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"

	tgecho "github.com/tokenguard/tokenguard/adapters/echo5"
)

// An echo v5 API with a guarded group and a route that requires a scope.
func Example() {
	as := oauthtest.NewServer(oauthtest.Options{}) // stands in for the real authorization server
	defer as.Close()

	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true, // the test server is plain HTTP on loopback
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	e := echo.New()
	e.GET("/health", func(c *echo.Context) error { return c.String(http.StatusOK, "ok") })
	api := e.Group("/v1", tgecho.New(g))
	api.GET("/orders", func(c *echo.Context) error {
		p, _ := tgecho.PrincipalFrom(c)
		return c.String(http.StatusOK, "orders of "+p.Subject)
	})
	api.POST("/orders", func(c *echo.Context) error {
		return c.NoContent(http.StatusCreated)
	}, tgecho.RequireScopes(g, "orders:write"))

	send := func(method, path, token string) {
		r := httptest.NewRequest(method, path, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		fmt.Println(method, path, w.Code, w.Body.String(), w.Header().Get("WWW-Authenticate") != "")
	}
	reader := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read"})
	send("GET", "/health", "")
	send("GET", "/v1/orders", "")
	send("GET", "/v1/orders", reader)
	send("POST", "/v1/orders", reader)
	// Output:
	// GET /health 200 ok false
	// GET /v1/orders 401 {"error_description":"bearer token required"}
	//  true
	// GET /v1/orders 200 orders of alice false
	// POST /v1/orders 403 {"error":"insufficient_scope","error_description":"token lacks a required scope","scope":"orders:write"}
	//  true
}
