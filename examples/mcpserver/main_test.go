package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/tokenguard/tokenguard/oauthtest"
)

// start runs the MCP server with its embedded authorization server for one test.
func start(t *testing.T) *embedded {
	t.Helper()
	e, err := startEmbedded(t.Context(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("startEmbedded: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// session connects the SDK's client to path with token, and fails the test
// if it cannot.
func session(t *testing.T, e *embedded, path, token string) *mcp.ClientSession {
	t.Helper()
	cs, _, err := connect(t.Context(), e.base+path, token)
	if err != nil {
		t.Fatalf("Connect to %s: %v", path, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func TestSelfCheck(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), nil, func(string) string { return "" }, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "all 5 checks passed") || strings.Contains(out.String(), "FAIL") {
		t.Errorf("output:\n%s", out.String())
	}
}

// An MCP client without a token gets 401 from each endpoint, with a
// challenge whose resource_metadata (read with the SDK's own parser) is
// where that endpoint's RFC 9728 document is served; the document names
// the endpoint as its resource, which the SDK's client checks.
func TestUnauthenticatedClient(t *testing.T) {
	e := start(t)
	for _, tc := range []struct {
		path   string
		scopes []string
	}{
		{PathMCP, nil},
		{PathOrders, []string{ScopeOrdersRead}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, rec, err := connect(t.Context(), e.base+tc.path, "")
			if err == nil {
				t.Fatal("connected without a token")
			}
			x, _ := rec.first()
			if x.Method != http.MethodPost || x.Status != http.StatusUnauthorized {
				t.Fatalf("%s %d, want POST 401", x.Method, x.Status)
			}
			metadataURL := e.base + "/.well-known/oauth-protected-resource" + tc.path
			scope := "" // the endpoint's scopes, for the client to ask for
			if len(tc.scopes) > 0 {
				scope = `, scope="` + strings.Join(tc.scopes, " ") + `"`
			}
			want := `Bearer realm="` + e.base + tc.path + `"` + scope + `, resource_metadata="` + metadataURL + `"`
			if got := x.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, want)
			}
			challenges, err := oauthex.ParseWWWAuthenticate(x.Header.Values("WWW-Authenticate"))
			if err != nil || len(challenges) != 1 || challenges[0].Scheme != "bearer" {
				t.Fatalf("challenges %+v, %v", challenges, err)
			}
			if got := challenges[0].Params["resource_metadata"]; got != metadataURL {
				t.Errorf("resource_metadata %q, want %q", got, metadataURL)
			}

			// The SDK's client-side fetch: loopback or HTTPS, resource
			// identical to the endpoint's URL (RFC 9728 §3.3).
			prm, err := oauthex.GetProtectedResourceMetadata(t.Context(), metadataURL, e.base+tc.path, nil)
			if err != nil {
				t.Fatalf("GetProtectedResourceMetadata: %v", err)
			}
			if !slices.Equal(prm.AuthorizationServers, []string{e.as.Issuer}) || !slices.Equal(prm.ScopesSupported, tc.scopes) ||
				!slices.Equal(prm.BearerMethodsSupported, []string{"header"}) {
				t.Errorf("metadata %+v", prm)
			}

			res, err := http.Get(metadataURL)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.Header.Get("Access-Control-Allow-Origin") != "*" || res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("metadata headers %v", res.Header)
			}
		})
	}
}

// With a token the client lists and calls tools, and the tools see the
// caller's subject and scopes.
func TestToolsSeeCaller(t *testing.T) {
	e := start(t)

	cs := session(t, e, PathMCP, e.token(PathMCP, "alice", "profile", "email"))
	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "whoami" {
		t.Errorf("tools at %s: %+v", PathMCP, tools.Tools)
	}
	var c Caller
	if err := callTool(t.Context(), cs, "whoami", &c); err != nil {
		t.Fatalf("whoami: %v", err)
	}
	want := Caller{Subject: "alice", Scopes: []string{"profile", "email"}, Issuer: e.as.Issuer, ClientID: "mcp-demo-client"}
	if c.Subject != want.Subject || !slices.Equal(c.Scopes, want.Scopes) || c.Issuer != want.Issuer || c.ClientID != want.ClientID {
		t.Errorf("whoami\n got %+v\nwant %+v", c, want)
	}

	cs = session(t, e, PathOrders, e.token(PathOrders, "bob", ScopeOrdersRead))
	tools, err = cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "list_orders" {
		t.Errorf("tools at %s: %+v", PathOrders, tools.Tools)
	}
	var l OrderList
	if err := callTool(t.Context(), cs, "list_orders", &l); err != nil {
		t.Fatalf("list_orders: %v", err)
	}
	if l.Owner != "bob" || len(l.Orders) != 1 || l.Orders[0].ID != "B-2001" {
		t.Errorf("list_orders %+v", l)
	}
}

// A token without orders:read gets 403 insufficient_scope at /mcp/orders,
// naming the scope; a token meant for /mcp gets 401 there, scope or not.
func TestMissingScope(t *testing.T) {
	e := start(t)
	metadataURL := e.base + "/.well-known/oauth-protected-resource" + PathOrders
	for _, tc := range []struct {
		name, token string
		status      int
		challenge   string
	}{
		{"scope missing", e.token(PathOrders, "alice", "profile"), http.StatusForbidden,
			`Bearer realm="` + e.base + PathOrders + `", error="insufficient_scope", error_description="token lacks a required scope", scope="orders:read", resource_metadata="` + metadataURL + `"`},
		{"no scope at all", e.token(PathOrders, "alice"), http.StatusForbidden,
			`Bearer realm="` + e.base + PathOrders + `", error="insufficient_scope", error_description="token lacks a required scope", scope="orders:read", resource_metadata="` + metadataURL + `"`},
		{"token for /mcp", e.token(PathMCP, "alice", ScopeOrdersRead), http.StatusUnauthorized,
			`Bearer realm="` + e.base + PathOrders + `", error="invalid_token", error_description="token not meant for this resource", scope="orders:read", resource_metadata="` + metadataURL + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rec, err := connect(t.Context(), e.base+PathOrders, tc.token)
			if err == nil {
				t.Fatal("connected")
			}
			x, _ := rec.first()
			if x.Status != tc.status {
				t.Errorf("status %d, want %d", x.Status, tc.status)
			}
			if got := x.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, tc.challenge)
			}
		})
	}
}

// stepUp is an auth.OAuthHandler that discovers what to ask for the way the
// SDK's own AuthorizationCodeHandler does (the challenge's
// resource_metadata, fetched and checked with oauthex, and its scope),
// then, standing in for the user's consent at the authorization server,
// mints a token for that resource with those scopes.
type stepUp struct {
	e *embedded

	mu     sync.Mutex
	token  string
	asked  [][]string // scopes asked for, per Authorize call
	status []int      // the answer that made the client call Authorize
}

func (s *stepUp) TokenSource(context.Context) (oauth2.TokenSource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == "" {
		return nil, nil
	}
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: s.token, TokenType: "Bearer"}), nil
}

func (s *stepUp) Authorize(ctx context.Context, req *http.Request, res *http.Response) error {
	defer res.Body.Close()
	challenges, err := oauthex.ParseWWWAuthenticate(res.Header.Values("WWW-Authenticate"))
	if err != nil {
		return err
	}
	if len(challenges) != 1 {
		return fmt.Errorf("%d challenges: %+v", len(challenges), challenges)
	}
	prm, err := oauthex.GetProtectedResourceMetadata(ctx, challenges[0].Params["resource_metadata"], req.URL.String(), nil)
	if err != nil {
		return err
	}
	scopes := strings.Fields(challenges[0].Params["scope"])
	if len(scopes) == 0 {
		scopes = prm.ScopesSupported
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked = append(s.asked, scopes)
	s.status = append(s.status, res.StatusCode)
	claims := oauthtest.Claims{"sub": "carol", "aud": prm.Resource}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	s.token = s.e.as.Mint(claims)
	return nil
}

// The SDK's client, given an OAuthHandler, recovers from the server's
// answers by itself: from a 401 it finds the metadata and the resource to
// ask a token for, and from a 403 insufficient_scope the scope to step up
// to. Both come only from what tokenguard sent.
func TestClientStepUp(t *testing.T) {
	e := start(t)
	t.Run("from a token without the scope", func(t *testing.T) {
		h := &stepUp{e: e, token: e.token(PathOrders, "carol", "profile")}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "step-up", Version: "v1.0.0"}, nil).Connect(t.Context(),
			&mcp.StreamableClientTransport{Endpoint: e.base + PathOrders, OAuthHandler: h, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		defer cs.Close()
		var l OrderList
		if err := callTool(t.Context(), cs, "list_orders", &l); err != nil {
			t.Fatalf("list_orders: %v", err)
		}
		if !slices.Equal(h.status, []int{http.StatusForbidden}) || len(h.asked) != 1 || !slices.Equal(h.asked[0], []string{ScopeOrdersRead}) {
			t.Errorf("Authorize calls: statuses %v, scopes asked %v", h.status, h.asked)
		}
	})
	t.Run("from no token", func(t *testing.T) {
		h := &stepUp{e: e}
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "step-up", Version: "v1.0.0"}, nil).Connect(t.Context(),
			&mcp.StreamableClientTransport{Endpoint: e.base + PathOrders, OAuthHandler: h, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		defer cs.Close()
		var l OrderList
		if err := callTool(t.Context(), cs, "list_orders", &l); err != nil {
			t.Fatalf("list_orders: %v", err)
		}
		// From the 401, the scopes come from the metadata's scopes_supported.
		if !slices.Equal(h.status, []int{http.StatusUnauthorized}) || len(h.asked) != 1 || !slices.Equal(h.asked[0], []string{ScopeOrdersRead}) {
			t.Errorf("Authorize calls: statuses %v, scopes asked %v", h.status, h.asked)
		}
	})
}

// A session belongs to the endpoint that opened it: its id means nothing
// at the other endpoint, which has its own SDK handler.
func TestSessionsStayOnTheirEndpoint(t *testing.T) {
	e := start(t)
	cs := session(t, e, PathMCP, e.token(PathMCP, "alice"))
	r, _ := http.NewRequest(http.MethodPost, e.base+PathOrders, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	r.Header.Set("Authorization", "Bearer "+e.token(PathOrders, "alice", ScopeOrdersRead))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	r.Header.Set("Mcp-Session-Id", cs.ID())
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404 (session not found)", res.StatusCode)
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		message string
	}{
		{"help", []string{"-h"}, nil, exitOK, "Usage: mcpserver"},
		{"unknown flag", []string{"-nope"}, nil, exitUsage, "flag provided but not defined"},
		{"argument", []string{"extra"}, nil, exitUsage, "unexpected arguments"},
		{"-addr without -serve", []string{"-addr", ":0"}, nil, exitUsage, "-addr applies only with -serve or -issuer"},
		{"-public-url without -issuer", []string{"-public-url", "https://mcp.example.com"}, nil, exitUsage, "-public-url applies only with -issuer"},
		{"public URL env without issuer", nil, map[string]string{EnvPublicURL: "https://mcp.example.com"}, exitUsage, "-public-url applies only with -issuer"},
		{"-insecure-http without -issuer", []string{"-insecure-http"}, nil, exitUsage, "-insecure-http applies only with -issuer"},
		{"-serve with -issuer", []string{"-serve", "-issuer", "https://as.example.com"}, nil, exitUsage, "does not go with -issuer"},
		{"-serve with issuer env", []string{"-serve"}, map[string]string{EnvIssuer: "https://as.example.com"}, exitUsage, "does not go with -issuer"},
		{"public URL with a path", []string{"-issuer", "https://as.example.com", "-public-url", "https://mcp.example.com/v1"}, nil, exitUsage, "is not a scheme and host"},
		{"public URL not http", []string{"-issuer", "https://as.example.com", "-public-url", "ftp://mcp.example.com"}, nil, exitUsage, "is not a scheme and host"},
		{"client id without issuer", nil, map[string]string{EnvClientID: "rs"}, exitUsage, EnvClientID + " applies only with -issuer"},
		{"secret without id", []string{"-issuer", "https://as.example.com"}, map[string]string{EnvClientSecret: "s"}, exitUsage, EnvClientSecret + " is set but"},
		{"issuer unreachable", []string{"-issuer", "https://127.0.0.1:1", "-addr", "127.0.0.1:0"}, nil, exitFail, "resource http://127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			code := run(ctx, tc.args, func(k string) string { return tc.env[k] }, &out, &errOut)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout %s\nstderr %s", code, tc.code, out.String(), errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.message) {
				t.Errorf("stderr lacks %q:\n%s", tc.message, errOut.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serving runs run with args until the test ends, and returns its output
// once it says it is serving.
func serving(t *testing.T, args []string, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut syncBuffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, args, func(k string) string { return env[k] }, &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		if c := <-code; c != exitOK {
			t.Errorf("exit %d\n%s", c, errOut.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "(Ctrl-C stops)") {
		select {
		case c := <-code:
			t.Fatalf("exit %d before serving\nstdout %s\nstderr %s", c, out.String(), errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving after 20s\nstdout %s\nstderr %s", out.String(), errOut.String())
		}
	}
	return out.String()
}

var endpointLine = regexp.MustCompile(`MCP endpoint (http://\S+)/mcp `)

// -issuer: the server trusts that authorization server and serves until
// interrupted.
func TestServeWithIssuer(t *testing.T) {
	as := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(as.Close)
	out := serving(t, []string{"-addr", "127.0.0.1:0", "-insecure-http"}, map[string]string{EnvIssuer: as.Issuer})
	m := endpointLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no endpoint in\n%s", out)
	}
	base := m[1]
	cs, _, err := connect(t.Context(), base+PathMCP, as.Mint(oauthtest.Claims{"sub": "dave", "aud": base + PathMCP, "scope": "x"}))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer cs.Close()
	var c Caller
	if err := callTool(t.Context(), cs, "whoami", &c); err != nil || c.Subject != "dave" || c.Issuer != as.Issuer {
		t.Errorf("whoami %+v, %v", c, err)
	}
}

var tokenLine = regexp.MustCompile(`for /mcp/orders, alice, orders:read:\n\s+(\S+)\n`)

// -serve: the embedded authorization server, and tokens that work.
func TestServeEmbedded(t *testing.T) {
	out := serving(t, []string{"-serve", "-addr", "127.0.0.1:0"}, nil)
	m, tm := endpointLine.FindStringSubmatch(out), tokenLine.FindStringSubmatch(out)
	if m == nil || tm == nil {
		t.Fatalf("no endpoint or token in\n%s", out)
	}
	cs, _, err := connect(t.Context(), m[1]+PathOrders, tm[1])
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer cs.Close()
	var l OrderList
	if err := callTool(t.Context(), cs, "list_orders", &l); err != nil || l.Owner != "alice" {
		t.Errorf("list_orders %+v, %v", l, err)
	}
}
