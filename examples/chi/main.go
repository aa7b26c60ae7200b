// Command chi is the orders API on go-chi/chi. chi takes
// func(http.Handler) http.Handler middleware, which is what tokenguard's
// Handler and RequireScopes are, so no adapter is needed.
//
//	go -C examples run ./chi                 # embedded authorization server + self-check
//	go -C examples run ./chi -discovery URL  # a real one (RFC 9728 metadata URL)
package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/examples/internal/demo"
)

func main() { demo.Main(program) }

var program = demo.Program{Name: "chi", Routes: routes}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return demo.Run(ctx, program, args, getenv, stdout, stderr)
}

func routes(g *tokenguard.Guard, orders *demo.Orders) http.Handler {
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Route("/orders", func(r chi.Router) {
		r.Use(g.Handler) // any valid token for every route below
		r.Get("/", func(w http.ResponseWriter, r *http.Request) {
			p, _ := tokenguard.PrincipalFrom(r.Context()) // always there behind g.Handler
			writeJSON(w, http.StatusOK, demo.OrderList{Subject: p.Subject, Orders: orders.List(p.Subject)})
		})
		r.With(g.RequireScopes(demo.ScopeWrite)).Post("/", func(w http.ResponseWriter, r *http.Request) {
			p, _ := tokenguard.PrincipalFrom(r.Context())
			writeJSON(w, http.StatusCreated, orders.Create(p.Subject))
		})
	})
	return r
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
