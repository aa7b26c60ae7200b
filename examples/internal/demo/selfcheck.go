package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Credentials of the embedded authorization server's two clients.
const (
	demoClient, demoSecret = "demo-client", "demo-secret"      // calls the API
	apiClient, apiSecret   = "orders-api", "orders-api-secret" // the API itself, for introspection
	opaqueSubject          = "carol"                           // owner of the opaque token
)

// check is one call of the self-check and the answer tokenguard must give.
type check struct {
	name          string
	method, path  string
	token         string
	wantStatus    int
	wantChallenge string // substring of WWW-Authenticate; "" means none may be sent
	wantError     string // the JSON body's "error"
	wantSubject   string // for 200/201: the caller the handler saw
}

// selfCheck starts an embedded authorization server and p's API, both on
// loopback, calls the API as clients would and prints each outcome.
func selfCheck(ctx context.Context, p Program, stdout, stderr io.Writer) int {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient(demoClient, demoSecret, ScopeRead, ScopeWrite)
	as.RegisterClient(apiClient, apiSecret) // may introspect, gets no tokens for the API
	fmt.Fprintf(stdout, "authorization server  %s (embedded)\n", as.Issuer)

	// The same discovery a real deployment runs: RFC 9728, then RFC 8414.
	g, err := tokenguard.New(ctx, tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true, // the embedded server speaks plain HTTP on loopback
		Introspection:       tokenguard.IntrospectionConfig{ClientID: apiClient, ClientSecret: apiSecret},
	})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return ExitFail
	}
	defer g.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return ExitFail
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- Serve(serveCtx, ln, p.Routes(g, &Orders{})) }()
	defer func() {
		stopServing()
		<-served
	}()
	api := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "%-21s %s (resource %s)\n\n", p.Name+" API", api, g.Resource())

	client := &http.Client{Timeout: 10 * time.Second}
	reader, err := clientCredentials(ctx, client, as.TokenURL(), ScopeRead)
	if err != nil {
		fmt.Fprintf(stderr, "%s: token request: %v\n", p.Name, err)
		return ExitFail
	}
	writer, err := clientCredentials(ctx, client, as.TokenURL(), ScopeRead+" "+ScopeWrite)
	if err != nil {
		fmt.Fprintf(stderr, "%s: token request: %v\n", p.Name, err)
		return ExitFail
	}
	opaque := as.MintOpaque(oauthtest.Claims{"sub": opaqueSubject, "scope": ScopeRead})

	checks := []check{
		{name: "public", method: "GET", path: "/healthz", wantStatus: 200},
		{name: "valid token", method: "GET", path: "/orders", token: reader, wantStatus: 200, wantSubject: demoClient},
		{name: "no token", method: "GET", path: "/orders", wantStatus: 401, wantChallenge: `resource_metadata="`},
		{name: "missing scope", method: "POST", path: "/orders", token: reader, wantStatus: 403,
			wantChallenge: `error="insufficient_scope"`, wantError: "insufficient_scope"},
		{name: "write scope", method: "POST", path: "/orders", token: writer, wantStatus: 201, wantSubject: demoClient},
		{name: "opaque token", method: "GET", path: "/orders", token: opaque, wantStatus: 200, wantSubject: opaqueSubject},
	}
	failed := 0
	for _, c := range checks {
		status, challenge, verdict := c.run(ctx, client, api)
		if verdict != "ok" {
			failed++
		}
		fmt.Fprintf(stdout, "%-13s %-4s %-8s -> %d  %s\n", c.name, c.method, c.path, status, verdict)
		if challenge != "" {
			fmt.Fprintf(stdout, "%13s WWW-Authenticate: %s\n", "", challenge)
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "\n%d of %d outcomes were wrong\n", failed, len(checks))
		return ExitFail
	}
	fmt.Fprintf(stdout, "\nall %d outcomes as expected\n", len(checks))
	return ExitOK
}

// run makes the call and returns the status, the challenge and "ok" or
// what was wrong.
func (c check) run(ctx context.Context, client *http.Client, api string) (int, string, string) {
	req, err := http.NewRequestWithContext(ctx, c.method, api+c.path, nil)
	if err != nil {
		return 0, "", "FAIL: " + err.Error()
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", "FAIL: " + err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, "", "FAIL: " + err.Error()
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	var got struct {
		Error   string `json:"error"`
		Subject string `json:"subject"` // GET /orders
		Owner   string `json:"owner"`   // POST /orders
	}
	if c.wantError != "" || c.wantSubject != "" {
		if err := json.Unmarshal(body, &got); err != nil {
			return resp.StatusCode, challenge, fmt.Sprintf("FAIL: body is not JSON: %q", truncate(body))
		}
	}
	switch {
	case resp.StatusCode != c.wantStatus:
		return resp.StatusCode, challenge, fmt.Sprintf("FAIL: want status %d", c.wantStatus)
	case c.wantChallenge == "" && challenge != "":
		return resp.StatusCode, challenge, "FAIL: unexpected WWW-Authenticate"
	case !strings.Contains(challenge, c.wantChallenge):
		return resp.StatusCode, challenge, fmt.Sprintf("FAIL: want WWW-Authenticate containing %s", c.wantChallenge)
	case got.Error != c.wantError:
		return resp.StatusCode, challenge, fmt.Sprintf("FAIL: body error %q, want %q", got.Error, c.wantError)
	case c.wantSubject != "" && got.Subject+got.Owner != c.wantSubject:
		return resp.StatusCode, challenge, fmt.Sprintf("FAIL: handler saw caller %q, want %q", got.Subject+got.Owner, c.wantSubject)
	}
	return resp.StatusCode, challenge, "ok"
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// clientCredentials gets a token for scope from the embedded server the way
// a client does (RFC 6749 §4.4).
func clientCredentials(ctx context.Context, client *http.Client, tokenURL, scope string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	req, err := http.NewRequestWithContext(ctx, "POST", tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(url.QueryEscape(demoClient), url.QueryEscape(demoSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
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
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return "", fmt.Errorf("status %d, error %q", resp.StatusCode, body.Error)
	}
	return body.AccessToken, nil
}
