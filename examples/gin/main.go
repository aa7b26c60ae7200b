// Command gin is the orders API on gin, protected through the tggin
// adapter: tggin.New authenticates a group, tggin.RequireScopes adds a
// route's scope, and tggin.PrincipalFrom reads the caller.
//
//	go -C examples run ./gin                 # embedded authorization server + self-check
//	go -C examples run ./gin -discovery URL  # a real one (RFC 9728 metadata URL)
package main

import (
	"context"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tokenguard/tokenguard"
	tggin "github.com/tokenguard/tokenguard/adapters/gin"
	"github.com/tokenguard/tokenguard/examples/internal/demo"
)

func main() { demo.Main(program) }

var program = demo.Program{Name: "gin", Routes: routes}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return demo.Run(ctx, program, args, getenv, stdout, stderr)
}

func init() {
	gin.SetMode(gin.ReleaseMode) // no route listing on stdout
}

func routes(g *tokenguard.Guard, orders *demo.Orders) http.Handler {
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/healthz", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	api := r.Group("/orders", tggin.New(g)) // any valid token for every route below
	api.GET("", func(c *gin.Context) {
		p, _ := tggin.PrincipalFrom(c) // always there behind tggin.New
		c.JSON(http.StatusOK, demo.OrderList{Subject: p.Subject, Orders: orders.List(p.Subject)})
	})
	api.POST("", tggin.RequireScopes(g, demo.ScopeWrite), func(c *gin.Context) {
		p, _ := tggin.PrincipalFrom(c)
		c.JSON(http.StatusCreated, orders.Create(p.Subject))
	})
	return r
}
