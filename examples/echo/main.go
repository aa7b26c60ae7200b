// Command echo is the orders API on echo v4, protected through the tgecho
// adapter: tgecho.New authenticates a group, tgecho.RequireScopes adds a
// route's scope, and tgecho.PrincipalFrom reads the caller. (For echo v5,
// import github.com/tokenguard/tokenguard/adapters/echo5 instead: the same
// API with *echo.Context.)
//
//	go -C examples run ./echo                 # embedded authorization server + self-check
//	go -C examples run ./echo -discovery URL  # a real one (RFC 9728 metadata URL)
package main

import (
	"context"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/tokenguard/tokenguard"
	tgecho "github.com/tokenguard/tokenguard/adapters/echo"
	"github.com/tokenguard/tokenguard/examples/internal/demo"
)

func main() { demo.Main(program) }

var program = demo.Program{Name: "echo", Routes: routes}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return demo.Run(ctx, program, args, getenv, stdout, stderr)
}

func routes(g *tokenguard.Guard, orders *demo.Orders) http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	})
	api := e.Group("/orders", tgecho.New(g)) // any valid token for every route below
	api.GET("", func(c echo.Context) error {
		p, _ := tgecho.PrincipalFrom(c) // always there behind tgecho.New
		return c.JSON(http.StatusOK, demo.OrderList{Subject: p.Subject, Orders: orders.List(p.Subject)})
	})
	api.POST("", func(c echo.Context) error {
		p, _ := tgecho.PrincipalFrom(c)
		return c.JSON(http.StatusCreated, orders.Create(p.Subject))
	}, tgecho.RequireScopes(g, demo.ScopeWrite))
	return e
}
