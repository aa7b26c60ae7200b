// Command quickstart protects a small API with tokenguard against an
// in-process authorization server (oauthtest), then calls it the way real
// clients do: with a valid token, without one, with an expired one, a forged
// one, one that lacks the scope a route needs, and with an opaque token
// (introspected) and a revoked one. It prints each outcome and exits 1 if
// any is not what tokenguard must answer.
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func main() {
	os.Exit(run(os.Stdout))
}

func run(out io.Writer) int {
	ctx := context.Background()

	// 1. An authorization server with the seed API's layout, on loopback.
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient("demo-client", "demo-secret", "orders:read")
	as.RegisterClient("orders-api", "orders-api-secret") // the API's own credentials, for introspection
	fmt.Fprintf(out, "authorization server  %s\n", as.URL)

	// 2. The guard trusts one issuer and expects tokens meant for this API;
	// the issuer's RFC 8414 metadata gives its keys and endpoints.
	// (Config{ResourceMetadataURL: ...} discovers both from RFC 9728 metadata.)
	g, err := tokenguard.New(ctx, tokenguard.Config{
		Issuer:            as.Issuer,
		Audience:          as.Resource(),
		InsecureAllowHTTP: true, // loopback demo server speaks plain HTTP
		// Opaque tokens are checked at the server's introspection endpoint.
		Introspection: tokenguard.IntrospectionConfig{ClientID: "orders-api", ClientSecret: "orders-api-secret"},
	})
	if err != nil {
		fmt.Fprintln(out, "tokenguard.New:", err)
		return 1
	}
	defer g.Close()
	fmt.Fprintf(out, "protected resource    %s (issuers %v)\n\n", g.Resource(), g.Issuers())

	// 3. The API: any valid token reads, writing needs orders:write.
	mux := http.NewServeMux()
	mux.Handle("GET /orders", g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "orders for %s (scopes %v)\n", p.Subject, p.Scopes)
	})))
	mux.Handle("POST /orders", g.RequireScopes("orders:write")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "order created")
	})))
	api := httptest.NewServer(mux)
	defer api.Close()

	// 4. A real client credentials grant against /oauth/token.
	token, err := clientCredentials(as.TokenURL(), "demo-client", "demo-secret")
	if err != nil {
		fmt.Fprintln(out, "token request:", err)
		return 1
	}

	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		fmt.Fprintln(out, err)
		return 1
	}
	forged, err := oauthtest.SignJWT(
		map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": as.KeyIDs()[0]},
		map[string]any{"iss": as.Issuer, "aud": g.Resource(), "sub": "mallory", "scope": "orders:read orders:write",
			"exp": time.Now().Add(time.Hour).Unix()},
		forger, "RS256")
	if err != nil {
		fmt.Fprintln(out, err)
		return 1
	}

	opaque := as.MintOpaque(oauthtest.Claims{"sub": "carol", "scope": "orders:read"})
	revoked := as.MintOpaque(oauthtest.Claims{"sub": "dave", "scope": "orders:read"})
	as.Revoke(revoked)

	cases := []struct {
		name, method, token string
		wantStatus          int
		wantChallenge       string // substring of WWW-Authenticate
	}{
		{"valid token", "GET", token, 200, ""},
		{"no token", "GET", "", 401, `Bearer realm=`},
		{"expired token", "GET", as.Mint(oauthtest.Claims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}), 401, `error="invalid_token"`},
		{"forged signature", "GET", forged, 401, `error="invalid_token"`},
		{"missing scope", "POST", token, 403, `error="insufficient_scope"`},
		{"opaque token", "GET", opaque, 200, ""},
		{"revoked opaque", "GET", revoked, 401, `error="invalid_token"`},
	}
	failed := 0
	for _, tc := range cases {
		status, challenge, err := call(api.URL+"/orders", tc.method, tc.token)
		verdict := "ok"
		switch {
		case err != nil:
			verdict = "FAIL: " + err.Error()
		case status != tc.wantStatus:
			verdict = fmt.Sprintf("FAIL: want status %d", tc.wantStatus)
		case tc.wantChallenge == "" && challenge != "":
			verdict = "FAIL: unexpected challenge"
		case !strings.Contains(challenge, tc.wantChallenge):
			verdict = fmt.Sprintf("FAIL: want challenge containing %s", tc.wantChallenge)
		}
		if verdict != "ok" {
			failed++
		}
		if challenge == "" {
			challenge = "-"
		}
		fmt.Fprintf(out, "%-17s %s /orders -> %d  %s\n%17s WWW-Authenticate: %s\n", tc.name, tc.method, status, verdict, "", challenge)
	}
	if failed > 0 {
		fmt.Fprintf(out, "\n%d of %d outcomes were wrong\n", failed, len(cases))
		return 1
	}
	fmt.Fprintf(out, "\nall %d outcomes as expected\n", len(cases))
	return 0
}

func clientCredentials(tokenURL, id, secret string) (string, error) {
	req, err := http.NewRequest("POST", tokenURL, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", err
	}
	if resp.StatusCode != 200 || body.AccessToken == "" {
		return "", fmt.Errorf("status %d, error %q", resp.StatusCode, body.Error)
	}
	return body.AccessToken, nil
}

func call(u, method, token string) (int, string, error) {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), nil
}
