package oauthtest_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func ExampleNewServer() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()

	// A resource server discovers its authorization server from the RFC 9728
	// document, then the keys from the authorization server's metadata.
	resp, err := as.Client().Get(as.ResourceMetadataURL())
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var meta struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		panic(err)
	}
	fmt.Println(meta.Resource == as.Resource(), meta.AuthorizationServers[0] == as.Issuer)

	// Mint returns an RFC 9068 access token signed with the default RS256 key.
	token := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read"})
	parts := strings.Split(token, ".")
	var header, claims map[string]any
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	c, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(h, &header)
	_ = json.Unmarshal(c, &claims)
	fmt.Println(header["alg"], header["typ"], header["kid"] == as.KeyIDs()[0])
	fmt.Println(claims["sub"], claims["scope"], claims["iss"] == as.Issuer, claims["aud"] == as.Resource())
	// Output:
	// true true
	// RS256 at+jwt true
	// alice orders:read true true
}

func ExampleServer_RotateKey() {
	as := oauthtest.NewServer(oauthtest.Options{Algorithms: []string{"ES256"}})
	defer as.Close()
	kidOf := func(token string) string {
		h, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
		var header struct{ Kid string }
		_ = json.Unmarshal(h, &header)
		return header.Kid
	}

	old := as.KeyIDs()[0]
	oldToken := as.Mint(nil)

	// Publish a new key and sign with it; the old key stays published...
	kid := as.RotateKey("ES256")
	fmt.Println(len(as.KeyIDs()), kidOf(as.Mint(nil)) == kid)

	// ...until it is retired. Tokens signed with it no longer verify.
	as.RetireKey(old)
	fmt.Println(len(as.KeyIDs()), slices.Contains(as.KeyIDs(), kidOf(oldToken)))
	// Output:
	// 2 true
	// 1 false
}

func ExampleServer_SetFault() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()

	// The JWKS endpoint fails once, then recovers.
	as.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{
		Status: http.StatusServiceUnavailable,
		Header: http.Header{"Retry-After": {"1"}},
		Times:  1,
	})
	for range 2 {
		resp, err := as.Client().Get(as.JWKSURL())
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Printf("%d Retry-After=%q\n", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	fmt.Println(as.Requests(oauthtest.EndpointJWKS), "requests")
	// Output:
	// 503 Retry-After="1"
	// 200 Retry-After=""
	// 2 requests
}

func ExampleServer_RegisterClient() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient("reporting", "s3cret", "orders:read", "orders:write")

	// The client-credentials grant with client_secret_basic: RFC 6749 §2.3.1
	// form-encodes the id and secret before base64.
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:read"}}
	req, _ := http.NewRequest(http.MethodPost, as.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape("reporting"), url.QueryEscape("s3cret"))
	resp, err := as.Client().Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, tok.TokenType, tok.ExpiresIn, tok.Scope, tok.AccessToken != "")
	// Output:
	// 200 Bearer 3600 orders:read true
}

func ExampleServer_MintWith() {
	as := oauthtest.NewServer(oauthtest.Options{Algorithms: []string{"RS256", "EdDSA"}})
	defer as.Close()

	// An EdDSA token without typ, exp and client_id, claiming a foreign jku.
	token := as.MintWith(oauthtest.MintOptions{
		Alg:    "EdDSA",
		Header: map[string]any{"typ": nil, "jku": "https://attacker.example/jwks"},
		Claims: oauthtest.Claims{"exp": nil, "client_id": nil},
	})
	parts := strings.Split(token, ".")
	var header, claims map[string]any
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	c, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(h, &header)
	_ = json.Unmarshal(c, &claims)
	fmt.Println(header["alg"], header["jku"], header["typ"])
	_, hasExp := claims["exp"]
	fmt.Println(claims["sub"], hasExp)
	// Output:
	// EdDSA https://attacker.example/jwks <nil>
	// user-1 false
}

func ExampleSignJWT() {
	// A token signed with a key the authorization server never published.
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	token, err := oauthtest.SignJWT(
		map[string]any{"alg": "EdDSA", "kid": "attacker"},
		map[string]any{"iss": "https://as.example", "sub": "mallory"},
		key, "EdDSA")
	if err != nil {
		panic(err)
	}
	parts := strings.Split(token, ".")
	h, _ := base64.RawURLEncoding.DecodeString(parts[0])
	c, _ := base64.RawURLEncoding.DecodeString(parts[1])
	fmt.Println(string(h))
	fmt.Println(string(c))
	// Output:
	// {"alg":"EdDSA","kid":"attacker"}
	// {"iss":"https://as.example","sub":"mallory"}
}

func ExampleServer_MintOpaque() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient("resource-server", "s3cret")

	// An opaque token: the resource server cannot read it and asks the
	// authorization server about it (RFC 7662).
	token := as.MintOpaque(oauthtest.Claims{"sub": "alice", "scope": "orders:read"})
	introspect := func() {
		form := url.Values{"token": {token}}
		req, _ := http.NewRequest(http.MethodPost, as.IntrospectionURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape("resource-server"), url.QueryEscape("s3cret"))
		resp, err := as.Client().Do(req)
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		var answer struct {
			Active bool   `json:"active"`
			Sub    string `json:"sub"`
			Scope  string `json:"scope"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
			panic(err)
		}
		fmt.Printf("%d active=%t sub=%q scope=%q\n", resp.StatusCode, answer.Active, answer.Sub, answer.Scope)
	}
	fmt.Println(strings.Contains(token, "."))
	introspect()

	as.Revoke(token)
	introspect()

	calls := as.IntrospectionCalls()
	fmt.Println(len(calls), calls[0].AuthMethod, calls[0].ClientID)
	// Output:
	// false
	// 200 active=true sub="alice" scope="orders:read"
	// 200 active=false sub="" scope=""
	// 2 client_secret_basic resource-server
}

// A guard for tests: GuardConfig trusts the server, and the test adds what
// it needs before New.
func ExampleServer_GuardConfig() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()

	cfg := as.GuardConfig() // Issuer, Resource, ResourceMetadataURL, and InsecureAllowHTTP for plain HTTP
	cfg.RequireATJWTType = true
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		panic(err)
	}
	defer g.Close()
	fmt.Println(g.Issuers()[0] == as.Issuer, g.Resource() == as.Resource())

	// Challenges point the client at the RFC 9728 document the server serves.
	w := httptest.NewRecorder()
	g.Handler(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/orders", nil))
	fmt.Println(w.Code, strings.Contains(w.Header().Get("WWW-Authenticate"), `resource_metadata="`+as.ResourceMetadataURL()+`"`))
	// Output:
	// true true
	// 401 true
}

// A handler test: the handler sits behind RequireScopes, and the request
// carries a Principal with chosen claims instead of a token.
func ExampleServer_WithPrincipal() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), as.GuardConfig())
	if err != nil {
		panic(err)
	}
	defer g.Close()

	orders := g.RequireScopes("read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "orders of %s", p.Subject)
	}))
	for _, claims := range []oauthtest.Claims{
		{"sub": "alice", "scope": "read"},
		{"sub": "bob", "scope": "write"},
	} {
		r := as.WithPrincipal(httptest.NewRequest("GET", "/orders", nil), g, claims)
		w := httptest.NewRecorder()
		orders.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body.String())
	}
	// Output:
	// 200 orders of alice
	// 403 {"error":"insufficient_scope","error_description":"token lacks a required scope","scope":"read"}
}

// Principal is what the guard makes of a token with the given claims: its
// requirements judge it and its Claims decode the token's claims.
func ExampleServer_Principal() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), as.GuardConfig())
	if err != nil {
		panic(err)
	}
	defer g.Close()

	p := as.Principal(g, oauthtest.Claims{"sub": "alice", "scope": "read", "tenant": "acme"})
	var claims struct {
		Tenant string `json:"tenant"`
	}
	if err := p.Claims(&claims); err != nil {
		panic(err)
	}
	fmt.Println(p.Subject, p.Scopes, claims.Tenant, p.Issuer == as.Issuer)

	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(tokenguard.WithPrincipal(r.Context(), p)) // what WithPrincipal does
	_, err = g.Check(r, tokenguard.AllScopes("read"), tokenguard.ClaimIs("tenant", "acme"))
	fmt.Println(err)
	_, err = g.Check(r, tokenguard.ClaimIs("tenant", "globex"))
	fmt.Println(err)
	// Output:
	// alice [read] acme true
	// <nil>
	// tokenguard: insufficient_scope: token does not meet this route's requirements: claim tenant does not hold "globex"
}

// BearerClient calls a protected server as a client holding a token would.
func ExampleServer_BearerClient() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	g, err := tokenguard.New(context.Background(), as.GuardConfig())
	if err != nil {
		panic(err)
	}
	defer g.Close()
	api := httptest.NewServer(g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s", p.Subject)
	})))
	defer api.Close()

	for _, c := range []*http.Client{as.BearerClient(as.Mint(oauthtest.Claims{"sub": "alice"})), as.Client()} {
		resp, err := c.Get(api.URL + "/hello")
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	}
	// Output:
	// 200 hello alice
	// 401 {"error_description":"bearer token required"}
}

// A DPoP client's key binds a token to it (cnf.jkt); DPoPClient then
// sends that token with a fresh proof per request and follows the
// Guard's nonces, as a real DPoP client does.
func ExampleNewDPoPKey() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	var g *tokenguard.Guard
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := tokenguard.PrincipalFrom(r.Context())
			fmt.Fprintf(w, "hello %s, bound to %s", p.Subject, p.Binding.JKT[:8])
		})).ServeHTTP(w, r)
	}))
	defer api.Close()
	cfg := as.GuardConfig()
	cfg.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPRequired, Origin: api.URL, NonceKey: []byte("a 32-byte key for DPoP nonces!!!")}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		panic(err)
	}
	defer g.Close()

	key := oauthtest.NewDPoPKey("ES256")
	token := as.Mint(key.Bind(oauthtest.Claims{"sub": "alice"}))
	for _, c := range []*http.Client{as.DPoPClient(key, token), as.BearerClient(token)} {
		resp, err := c.Get(api.URL + "/hello")
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)) == "hello alice, bound to "+key.Thumbprint()[:8])
	}
	// Output:
	// 200 true
	// 401 false
}
