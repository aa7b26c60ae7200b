package oauthtest_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

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
