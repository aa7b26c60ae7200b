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

// A route that needs multi-factor authentication asks for it with RFC
// 9470's challenge: the client sends the user back to log in again.
func ExampleAuthenticatedWith() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), as.GuardConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	transfer := g.Require(tokenguard.AuthenticatedWith("urn:example:mfa"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	r := httptest.NewRequest("POST", "/transfers", nil)
	r.Header.Set("Authorization", "Bearer "+as.Mint(oauthtest.Claims{"acr": "urn:example:password"}))
	w := httptest.NewRecorder()
	transfer.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate") != "")
	// Output:
	// 401 true
}

// Two replicas share introspection through a store (here an in-process
// one; in production tgredis.New on Redis): the second replica does not
// ask the authorization server again.
func ExampleFleetConfig() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient("orders-api", "orders-api-secret")
	store := newMemStore()
	replica := func() *tokenguard.Guard {
		cfg := as.GuardConfig()
		cfg.Introspection = tokenguard.IntrospectionConfig{ClientID: "orders-api", ClientSecret: "orders-api-secret"}
		cfg.Fleet = tokenguard.FleetConfig{Store: store, Key: fleetKey}
		g, err := tokenguard.New(context.Background(), cfg)
		if err != nil {
			log.Fatal(err)
		}
		return g
	}
	a, b := replica(), replica()
	defer a.Close()
	defer b.Close()

	token := as.MintOpaque(nil)
	for _, g := range []*tokenguard.Guard{a, b} {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		_, err := g.Authenticate(r)
		fmt.Println(err)
	}
	fmt.Println(as.Requests(oauthtest.EndpointIntrospect), "introspection call")

	// A revocation webhook tells the replica; the shared entry goes too.
	as.Revoke(token)
	_ = a.Forget(context.Background(), token)
	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	_, err := a.Authenticate(r)
	fmt.Println(err != nil)
	// Output:
	// <nil>
	// <nil>
	// 1 introspection call
	// true
}

// Behind a TLS-terminating proxy that forwards the client certificate in
// a header (and strips that header from what clients send), a
// certificate-bound token (RFC 8705) is checked against that certificate.
func ExampleForwardedClientCertificate() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	cfg := as.GuardConfig()
	cfg.ClientCertificate = tokenguard.ForwardedClientCertificate("X-Forwarded-Client-Cert")
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	// A token bound to a certificate this request does not carry.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+as.Mint(oauthtest.Claims{"cnf": map[string]any{"x5t#S256": "bWVudGlvbmVkLWNlcnRpZmljYXRlLXRodW1icHJpbnQ"}}))
	_, err = g.Authenticate(r)
	fmt.Println(err)
	// Output:
	// tokenguard: invalid_token: token requires proof of possession: a certificate-bound token (RFC 8705) and the request has no client certificate
}

// A readiness probe asks the Guard whether its authorization servers can
// vouch for tokens now.
func ExampleGuard_Health() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), as.GuardConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	ready := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := g.Health(); !h.Ready {
			http.Error(w, h.Err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	w := httptest.NewRecorder()
	ready.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	h := g.Health()
	fmt.Println(w.Code, h.Issuers[0].Keys, h.Issuers[0].Introspection)
	// Output:
	// 204 fresh off
}
