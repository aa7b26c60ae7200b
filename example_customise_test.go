package tokenguard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// An ErrorHandler writes the body of every refusal, here an RFC 9457
// problem document; the WWW-Authenticate challenge stays the Guard's.
func ExampleConfig_errorHandler() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	cfg := as.GuardConfig()
	cfg.ErrorHandler = func(w http.ResponseWriter, r *http.Request, e *tokenguard.Error) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(e.Status)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"type":   "https://api.example.com/problems/" + string(e.Reason),
			"title":  e.Description,
			"status": e.Status,
		})
	}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	w := httptest.NewRecorder()
	g.RequireScopes("orders:read")(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/orders", nil))
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	fmt.Println(w.Header().Get("WWW-Authenticate") != "")
	fmt.Print(w.Body.String())
	// Output:
	// 401 application/problem+json
	// true
	// {"status":401,"title":"bearer token required","type":"https://api.example.com/problems/token_missing"}
}

// A browser app keeps its access token in a cookie; the Guard reads it
// there as well as from the Authorization header (never both at once).
func ExampleCookieToken() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	cfg := as.GuardConfig()
	cfg.TokenSources = []tokenguard.TokenSource{tokenguard.CookieToken("access_token")}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	api := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		fmt.Fprint(w, p.Subject)
	}))

	r := httptest.NewRequest("GET", "/me", nil)
	r.AddCookie(&http.Cookie{Name: "access_token", Value: as.Mint(oauthtest.Claims{"sub": "alice"})})
	w := httptest.NewRecorder()
	api.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// 200 alice
}

// Optional serves anonymous callers and authenticated ones on one route,
// while a bad token is still refused.
func ExampleGuard_Optional() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), as.GuardConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	feed := g.Optional(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := tokenguard.PrincipalFrom(r.Context()); ok {
			fmt.Fprint(w, "feed for "+p.Subject)
			return
		}
		fmt.Fprint(w, "public feed")
	}))
	for _, auth := range []string{"", "Bearer " + as.Mint(oauthtest.Claims{"sub": "alice"}), "Bearer not-a-token"} {
		r := httptest.NewRequest("GET", "/feed", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		feed.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body.String())
	}
	// Output:
	// 200 public feed
	// 200 feed for alice
	// 401 {"error":"invalid_token","error_description":"token is not a JWT"}
}

// ClaimEquals compares booleans and numbers, not only strings.
func ExampleClaimEquals() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), as.GuardConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	h := g.Require(tokenguard.ClaimEquals("email_verified", true), tokenguard.ClaimEquals("tier", 2))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, claims := range []oauthtest.Claims{
		{"email_verified": true, "tier": 2},
		{"email_verified": "true", "tier": 2},
		{"email_verified": true, "tier": 2.5},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+as.Mint(claims))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	// 200
	// 403
	// 403
}

// Static keys: an air-gapped deployment (or a test) gives the issuer's
// JWK Set itself, typically read with os.ReadFile; nothing is fetched.
func ExampleConfig_staticKeys() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	resp, err := http.Get(as.JWKSURL()) // stands in for os.ReadFile("jwks.json")
	if err != nil {
		log.Fatal(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuer:   as.Issuer,
		Audience: as.Resource(),
		JWKS:     doc,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+as.Mint(nil))
	p, err := g.Authenticate(r)
	fmt.Println(p.Issuer == as.Issuer, err)
	// Output:
	// true <nil>
}
