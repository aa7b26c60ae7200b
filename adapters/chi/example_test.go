package tgchi_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/go-chi/chi/v5"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// The core's middleware plugs into chi as it is: Handler in a group,
// RequireScopes with r.With, URL parameters as usual.
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

	r := chi.NewRouter()
	r.Get("/health", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})
	r.Group(func(r chi.Router) {
		r.Use(g.Handler)
		r.Get("/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
			p, _ := tokenguard.PrincipalFrom(r.Context())
			fmt.Fprintf(w, "order %s for %s", chi.URLParam(r, "id"), p.Subject)
		})
		r.With(g.RequireScopes("orders:write")).Post("/orders", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
		})
	})

	send := func(method, path, token string) {
		req := httptest.NewRequest(method, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		fmt.Println(method, path, w.Code, w.Body.String())
	}
	reader := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read"})
	send("GET", "/health", "")
	send("GET", "/orders/42", reader)
	send("GET", "/orders/42", "")
	send("POST", "/orders", reader)
	// Output:
	// GET /health 200 ok
	// GET /orders/42 200 order 42 for alice
	// GET /orders/42 401 {"error_description":"bearer token required"}
	//
	// POST /orders 403 {"error":"insufficient_scope","error_description":"token lacks a required scope","scope":"orders:write"}
}
