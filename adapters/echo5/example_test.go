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

// A route that serves anonymous callers too: without a token the handler
// runs with no Principal, with a valid one it sees the caller, and a bad
// token (here an expired one) is still refused.
func ExampleOptional() {
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
	e.GET("/catalog", func(c *echo.Context) error {
		if p, ok := tgecho.PrincipalFrom(c); ok {
			return c.String(http.StatusOK, "catalog for "+p.Subject)
		}
		return c.String(http.StatusOK, "public catalog")
	}, tgecho.Optional(g))

	send := func(token string) {
		r := httptest.NewRequest("GET", "/catalog", nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body.String())
	}
	send("")
	send(as.Mint(oauthtest.Claims{"sub": "alice"}))
	send(as.Mint(oauthtest.Claims{"sub": "alice", "exp": 1, "iat": 0})) // expired
	// Output:
	// 200 public catalog
	// 200 catalog for alice
	// 401 {"error":"invalid_token","error_description":"token expired"}
}
