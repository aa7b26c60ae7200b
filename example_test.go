package tokenguard_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// A resource server trusts one authorization server, accepts tokens
// meant for it, and protects a handler.
func Example() {
	as := oauthtest.NewServer(oauthtest.Options{}) // stands in for the real authorization server
	defer as.Close()

	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuer:            as.Issuer,     // e.g. https://as.example.com
		Audience:          as.Resource(), // e.g. https://api.example.com
		InsecureAllowHTTP: true,          // the test server is plain HTTP on loopback
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	api := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s", p.Subject)
	}))

	r := httptest.NewRequest("GET", "/v1/orders", nil)
	r.Header.Set("Authorization", "Bearer "+as.Mint(oauthtest.Claims{"sub": "alice"}))
	w := httptest.NewRecorder()
	api.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())

	w = httptest.NewRecorder()
	api.ServeHTTP(w, httptest.NewRequest("GET", "/v1/orders", nil))
	fmt.Println(w.Code, w.Header().Get("WWW-Authenticate") != "")
	// Output:
	// 200 hello alice
	// 401 true
}

// When someone else hosts the resource's RFC 9728 metadata, the Guard
// discovers its authorization servers, and the resource, from it.
func ExampleConfig_resourceMetadata() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	fmt.Println(g.Resource() == as.Resource(), g.Issuers()[0] == as.Issuer)
	// Output:
	// true true
}

// Routes can require scopes; a token without them gets 403 with the
// insufficient_scope challenge naming what is missing.
func ExampleGuard_RequireScopes() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuer:            as.Issuer,
		Resource:          as.Resource(),
		InsecureAllowHTTP: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	mux := http.NewServeMux()
	mux.Handle("POST /orders", g.RequireScopes("orders:write")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})))

	r := httptest.NewRequest("POST", "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+as.Mint(oauthtest.Claims{"scope": "orders:read"}))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code)
	// Output:
	// 403
}

// Frameworks that do not take net/http middleware call Authenticate and
// WriteError themselves.
func ExampleGuard_Authenticate() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: as.Resource(), InsecureAllowHTTP: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+as.Mint(oauthtest.Claims{"sub": "svc-1", "scope": "a b"}))
	p, err := g.Authenticate(r)
	if err != nil {
		w := httptest.NewRecorder()
		g.WriteError(w, r, err)
		return
	}
	fmt.Println(p.Subject, p.Scopes, p.Kind)
	// Output:
	// svc-1 [a b] jwt
}

// The verified-token cache spares a client that reuses its token the
// signature check on every request after the first; its counters show
// how often that happens.
func ExampleGuard_TokenCacheStats() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	api := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	token := as.Mint(nil)
	for range 3 {
		r := httptest.NewRequest("GET", "/v1/orders", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		api.ServeHTTP(httptest.NewRecorder(), r)
	}
	st := g.TokenCacheStats()
	fmt.Printf("verified %d, from the cache %d, cached now %d\n", st.Misses, st.Hits, st.Entries)
	// Output:
	// verified 1, from the cache 2, cached now 1
}

// Two authorization servers introspect, each with its own credentials: the
// main one (discovered, owning Config.Introspection) and a partner whose
// opaque tokens carry a prefix. Each token goes only to its own issuer, and
// the Principal says which one vouched for it.
func ExampleTrustedIssuer_introspection() {
	main := oauthtest.NewServer(oauthtest.Options{})
	defer main.Close()
	main.RegisterClient("orders-api", "main-secret")
	partner := oauthtest.NewServer(oauthtest.Options{OpaqueTokenPrefix: "pt_"})
	defer partner.Close()
	partner.RegisterClient("orders-at-partner", "partner-secret")

	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		ResourceMetadataURL: main.ResourceMetadataURL(),
		Introspection:       tokenguard.IntrospectionConfig{ClientID: "orders-api", ClientSecret: "main-secret"},
		Issuers: []tokenguard.TrustedIssuer{{
			Issuer:   partner.Issuer,
			Audience: main.Resource(),
			Introspection: &tokenguard.IntrospectionConfig{
				ClientID: "orders-at-partner", ClientSecret: "partner-secret",
				TokenPrefixes: []string{"pt_"},
			},
		}},
		InsecureAllowHTTP: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	for _, tok := range []string{
		main.MintOpaque(oauthtest.Claims{"sub": "alice"}),
		partner.MintOpaque(oauthtest.Claims{"sub": "bob", "aud": main.Resource()}),
		"pt_made-up",
	} {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		p, err := g.Authenticate(r)
		switch {
		case err != nil:
			fmt.Println("refused:", err.(*tokenguard.Error).Description)
		case p.Issuer == main.Issuer:
			fmt.Println(p.Subject, "vouched for by the main server")
		case p.Issuer == partner.Issuer:
			fmt.Println(p.Subject, "vouched for by the partner")
		}
	}
	fmt.Println("calls:", len(main.IntrospectionCalls()), len(partner.IntrospectionCalls()))
	// Output:
	// alice vouched for by the main server
	// bob vouched for by the partner
	// refused: token is not active
	// calls: 1 2
}

// A refusal's Reason tells an expired token from one for another API,
// without reading its text.
func ExampleReason() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuer: as.Issuer, Resource: as.Resource(), InsecureAllowHTTP: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	for _, tok := range []string{
		as.Mint(oauthtest.Claims{"exp": 1}),
		as.Mint(oauthtest.Claims{"aud": "api://payments"}),
	} {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		_, err := g.Authenticate(r)
		switch {
		case errors.Is(err, tokenguard.ReasonTokenExpired):
			fmt.Println("expired: ask the client to refresh")
		case errors.Is(err, tokenguard.ReasonAudienceMismatch):
			fmt.Println("meant for another API:", string(err.(*tokenguard.Error).Reason))
		}
	}
	// Output:
	// expired: ask the client to refresh
	// meant for another API: audience_mismatch
}
