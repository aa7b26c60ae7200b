// Command nethttp is the orders API on the standard library's ServeMux:
// tokenguard's Handler and RequireScopes are func(http.Handler) http.Handler
// middleware, so no adapter is needed.
//
//	go -C examples run ./nethttp                 # embedded authorization server + self-check
//	go -C examples run ./nethttp -discovery URL  # a real one (RFC 9728 metadata URL)
package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/examples/internal/demo"
)

func main() { demo.Main(program) }

var program = demo.Program{Name: "nethttp", Routes: routes}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return demo.Run(ctx, program, args, getenv, stdout, stderr)
}

func routes(g *tokenguard.Guard, orders *demo.Orders) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// Any valid token.
	mux.Handle("GET /orders", g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context()) // always there behind g.Handler
		writeJSON(w, http.StatusOK, demo.OrderList{Subject: p.Subject, Orders: orders.List(p.Subject)})
	})))
	// A valid token with orders:write; RequireScopes authenticates by itself.
	mux.Handle("POST /orders", g.RequireScopes(demo.ScopeWrite)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		writeJSON(w, http.StatusCreated, orders.Create(p.Subject))
	})))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
