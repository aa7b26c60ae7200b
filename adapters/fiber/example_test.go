package tgfiber_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"

	"github.com/gofiber/fiber/v3"

	"github.com/tokenguard/tokenguard"
	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// call sends a request to app through app.Test and prints the status and
// the body.
func call(app *fiber.App, method, path, token string) {
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := app.Test(req)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(method, res.StatusCode, string(body))
}

// Every route of the app needs a valid bearer token, and creating an order
// needs the orders:write scope too. Refusals carry the RFC 6750 status,
// WWW-Authenticate challenge and JSON body the core writes.
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

	app := fiber.New()
	app.Use(tgfiber.New(g))
	app.Get("/orders", func(c fiber.Ctx) error {
		p, _ := tgfiber.PrincipalFrom(c)
		return c.SendString("orders of " + p.Subject)
	})
	app.Post("/orders", tgfiber.RequireScopes(g, "orders:write"), func(c fiber.Ctx) error {
		return c.SendStatus(fiber.StatusCreated)
	})

	reader := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read"})
	writer := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read orders:write"})
	call(app, "GET", "/orders", reader)
	call(app, "GET", "/orders", "")
	call(app, "POST", "/orders", reader)
	call(app, "POST", "/orders", writer)
	// Output:
	// GET 200 orders of alice
	// GET 401 {"error_description":"bearer token required"}
	//
	// POST 403 {"error":"insufficient_scope","error_description":"token lacks a required scope","scope":"orders:write"}
	//
	// POST 201 Created
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

	app := fiber.New()
	app.Get("/catalog", tgfiber.Optional(g), func(c fiber.Ctx) error {
		if p, ok := tgfiber.PrincipalFrom(c); ok {
			return c.SendString("catalog for " + p.Subject)
		}
		return c.SendString("public catalog")
	})

	call(app, "GET", "/catalog", "")
	call(app, "GET", "/catalog", as.Mint(oauthtest.Claims{"sub": "alice"}))
	call(app, "GET", "/catalog", as.Mint(oauthtest.Claims{"sub": "alice", "exp": 1, "iat": 0})) // expired
	// Output:
	// GET 200 public catalog
	// GET 200 catalog for alice
	// GET 401 {"error":"invalid_token","error_description":"token expired"}
}

// A group whose tokens must belong to one tenant (a claim requirement),
// and a route of it that also needs one of two scopes: both apply, and a
// token that fails either gets 403.
func ExampleRequire() {
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

	app := fiber.New()
	acme := app.Group("/acme", tgfiber.New(g), tgfiber.Require(g, tokenguard.ClaimIs("tenant", "acme")))
	acme.Get("/reports", tgfiber.Require(g, tokenguard.AnyScope("reports:read", "admin")), func(c fiber.Ctx) error {
		p, _ := tgfiber.PrincipalFrom(c)
		return c.SendString("reports for " + p.Subject)
	})

	call(app, "GET", "/acme/reports", as.Mint(oauthtest.Claims{"sub": "ann", "tenant": "acme", "scope": "admin"}))
	call(app, "GET", "/acme/reports", as.Mint(oauthtest.Claims{"sub": "bob", "tenant": "globex", "scope": "admin"}))
	call(app, "GET", "/acme/reports", as.Mint(oauthtest.Claims{"sub": "cat", "tenant": "acme", "scope": "orders:read"}))
	// Output:
	// GET 200 reports for ann
	// GET 403 {"error":"insufficient_scope","error_description":"token does not meet this route's requirements"}
	//
	// GET 403 {"error":"insufficient_scope","error_description":"token lacks a required scope","scope":"reports:read admin"}
}

// Code below the handler that gets only c.Context() (a service, a
// repository) finds the caller there with tokenguard.PrincipalFrom.
func ExamplePrincipalFrom() {
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

	audit := func(ctx context.Context, action string) string {
		p, ok := tokenguard.PrincipalFrom(ctx)
		if !ok {
			return "anonymous " + action
		}
		return p.Subject + " " + action
	}
	app := fiber.New()
	app.Delete("/orders/:id", tgfiber.New(g), func(c fiber.Ctx) error {
		return c.SendString(audit(c.Context(), "deleted order "+c.Params("id")))
	})

	call(app, "DELETE", "/orders/7", as.Mint(oauthtest.Claims{"sub": "alice"}))
	// Output:
	// DELETE 200 alice deleted order 7
}
