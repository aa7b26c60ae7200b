package tokenguard_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// With DPoP allowed, a DPoP-bound token (cnf.jkt) is accepted only with a
// proof of its key; presented as a bearer token it is refused, and the
// challenge offers both schemes.
func ExampleDPoPConfig() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	cfg := as.GuardConfig()
	cfg.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: "https://api.example.com"}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	stolen := as.Mint(oauthtest.Claims{"cnf": map[string]any{"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})
	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+stolen)
	w := httptest.NewRecorder()
	g.Handler(http.NotFoundHandler()).ServeHTTP(w, r)
	fmt.Println(w.Code, len(w.Header().Values("WWW-Authenticate")))
	// Output:
	// 401 2
}

// Refuse gives an adapter that answers in another protocol (gRPC, a
// WebSocket close) everything WriteError would send: the status and the
// header fields, every challenge in order.
func ExampleGuard_Refuse() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	cfg := as.GuardConfig()
	cfg.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: "https://api.example.com"}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	r := httptest.NewRequest("POST", "/orders.v1.Orders/Create", nil) // a gRPC call, as a request
	_, err = g.Authenticate(r)
	e, h := g.Refuse(r, err)
	fmt.Println(e.Status, e.Reason == tokenguard.ReasonTokenMissing, len(h.Values("WWW-Authenticate")), h.Get("Cache-Control"))
	// Output:
	// 401 true 2 no-store
}
