package tggin_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"

	"github.com/tokenguard/tokenguard"
	tggin "github.com/tokenguard/tokenguard/adapters/gin"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Every route of the engine needs a valid bearer token, and creating an
// order needs the orders:write scope too. Rejections carry the RFC 6750
// status, WWW-Authenticate challenge and JSON body the core writes.
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

	r := gin.New()
	r.Use(tggin.New(g))
	r.GET("/orders", func(c *gin.Context) {
		p, _ := tggin.PrincipalFrom(c)
		c.String(http.StatusOK, "orders of %s", p.Subject)
	})
	r.POST("/orders", tggin.RequireScopes(g, "orders:write"), func(c *gin.Context) {
		c.Status(http.StatusCreated)
	})

	send := func(method, token string) {
		req := httptest.NewRequest(method, "/orders", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Println(method, w.Code, w.Body.String())
	}
	reader := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read"})
	writer := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read orders:write"})
	send("GET", reader)
	send("GET", "")
	send("POST", reader)
	send("POST", writer)
	// Output:
	// GET 200 orders of alice
	// GET 401 {"error_description":"bearer token required"}
	//
	// POST 403 {"error":"insufficient_scope","error_description":"token lacks a required scope","scope":"orders:write"}
	//
	// POST 201
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

	r := gin.New()
	r.GET("/catalog", tggin.Optional(g), func(c *gin.Context) {
		if p, ok := tggin.PrincipalFrom(c); ok {
			c.String(http.StatusOK, "catalog for %s", p.Subject)
			return
		}
		c.String(http.StatusOK, "public catalog")
	})

	send := func(token string) {
		req := httptest.NewRequest("GET", "/catalog", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
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
