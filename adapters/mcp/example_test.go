package tgmcp_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"

	tgmcp "github.com/tokenguard/tokenguard/adapters/mcp"
)

// An MCP server over streamable HTTP whose every request needs a token
// with the mcp:tools scope, and which serves its RFC 9728 metadata where
// every challenge points. Its tool reads the caller from
// req.Extra.TokenInfo, where the SDK puts it.
func Example() {
	ctx := context.Background()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux) // the MCP server; its /mcp URL is the resource
	defer srv.Close()
	as := oauthtest.NewServer(oauthtest.Options{Resource: srv.URL + "/mcp"}) // stands in for the real authorization server
	defer as.Close()

	g, err := tokenguard.New(ctx, tokenguard.Config{
		Issuer:            as.Issuer,
		Resource:          srv.URL + "/mcp",
		ScopesSupported:   []string{"mcp:tools"},
		InsecureAllowHTTP: true, // the test servers are plain HTTP on loopback
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	server := mcp.NewServer(&mcp.Implementation{Name: "example", Version: "v1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "whoami", Description: "the caller"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			ti := req.Extra.TokenInfo // set on every request by tgmcp.Middleware
			sub, _ := ti.Extra[tgmcp.ExtraSubject].(string)
			iss, _ := ti.Extra[tgmcp.ExtraIssuer].(string)
			// UserID, which binds the session, names the issuer as well.
			text := fmt.Sprintf("%s with scopes %v; session bound to %v", sub, ti.Scopes, ti.UserID == tgmcp.UserID(iss, sub))
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
		})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)

	mux.Handle(g.MetadataPath(), g.MetadataHandler()) // /.well-known/oauth-protected-resource/mcp
	mux.Handle("/mcp", tgmcp.Middleware(g, tokenguard.AllScopes("mcp:tools"))(handler))

	// Plain HTTP requests first, to show the answers.
	post := func(token string) {
		r, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(`{}`))
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			log.Fatal(err)
		}
		res.Body.Close()
		challenge := strings.ReplaceAll(res.Header.Get("WWW-Authenticate"), srv.URL, "http://mcp.test")
		fmt.Println(res.StatusCode, challenge)
	}
	post("")                                            // no token: 401, the scope to ask for, and where the metadata is
	post(as.Mint(oauthtest.Claims{"scope": "profile"})) // the scope is missing: 403, and which one to ask for

	// The SDK's own client, with a token that has the scope.
	client := mcp.NewClient(&mcp.Implementation{Name: "example-client", Version: "v1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   srv.URL + "/mcp",
		HTTPClient: &http.Client{Transport: bearer(as.Mint(oauthtest.Claims{"sub": "alice", "scope": "mcp:tools"}))},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cs.Close()
	out, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.Content[0].(*mcp.TextContent).Text)

	// Output:
	// 401 Bearer realm="http://mcp.test/mcp", scope="mcp:tools", resource_metadata="http://mcp.test/.well-known/oauth-protected-resource/mcp"
	// 403 Bearer realm="http://mcp.test/mcp", error="insufficient_scope", error_description="token lacks a required scope", scope="mcp:tools", resource_metadata="http://mcp.test/.well-known/oauth-protected-resource/mcp"
	// alice with scopes [mcp:tools]; session bound to true
}

// bearer is an http.RoundTripper that sends its token as a bearer token.
type bearer string

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+string(b))
	return http.DefaultTransport.RoundTrip(r)
}

// One MCP endpoint whose tools need different scopes: every request needs
// mcp:tools, and a call of delete_order needs orders:write as well. A
// call the token's scopes do not cover gets 403 insufficient_scope naming
// the tool's scopes (the MCP step-up flow: an MCP client with an
// OAuthHandler asks for them and retries), before the tool runs; tools/list
// and the other tools need mcp:tools only.
func ExampleProtect() {
	ctx := context.Background()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	as := oauthtest.NewServer(oauthtest.Options{Resource: srv.URL + "/mcp"})
	defer as.Close()
	g, err := tokenguard.New(ctx, tokenguard.Config{
		Issuer:            as.Issuer,
		Resource:          srv.URL + "/mcp",
		ScopesSupported:   []string{"mcp:tools", "orders:write"},
		InsecureAllowHTTP: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	server := mcp.NewServer(&mcp.Implementation{Name: "orders", Version: "v1.0.0"}, nil)
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	mcp.AddTool(server, &mcp.Tool{Name: "list_orders"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return text("2 open orders"), nil, nil
		})
	mcp.AddTool(server, &mcp.Tool{Name: "delete_order"},
		func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
			return text("order 42 deleted"), nil, nil // runs only for a token with orders:write
		})
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)

	mux.Handle(g.MetadataPath(), g.MetadataHandler())
	mux.Handle("/mcp", tgmcp.Protect(g, tgmcp.Options{
		Require: []tokenguard.Requirement{tokenguard.AllScopes("mcp:tools")},
		Tools: map[string][]tokenguard.Requirement{
			"delete_order": {tokenguard.AllScopes("orders:write")},
		},
	})(handler))

	// call connects with a token of scope and calls tool; the transport
	// prints the challenge of a refusal.
	call := func(scope, tool string) {
		client := mcp.NewClient(&mcp.Implementation{Name: "example-client", Version: "v1.0.0"}, nil)
		cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint:   srv.URL + "/mcp",
			HTTPClient: &http.Client{Transport: showRefusals{bearer(as.Mint(oauthtest.Claims{"sub": "alice", "scope": scope}))}},
			MaxRetries: -1,
		}, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer cs.Close()
		out, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool})
		if err != nil {
			fmt.Printf("%s with %q: refused\n", tool, scope)
			return
		}
		fmt.Printf("%s with %q: %s\n", tool, scope, out.Content[0].(*mcp.TextContent).Text)
	}
	call("mcp:tools", "list_orders")
	call("mcp:tools", "delete_order")
	call("mcp:tools orders:write", "delete_order")

	// Output:
	// list_orders with "mcp:tools": 2 open orders
	// 403 Bearer realm="http://mcp.test/mcp", error="insufficient_scope", error_description="token lacks a required scope", scope="orders:write", resource_metadata="http://mcp.test/.well-known/oauth-protected-resource/mcp"
	// delete_order with "mcp:tools": refused
	// delete_order with "mcp:tools orders:write": order 42 deleted
}

// showRefusals prints the status and challenge of every refused request
// its RoundTripper sends, with the test server's URL as http://mcp.test.
type showRefusals struct{ rt http.RoundTripper }

func (s showRefusals) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := s.rt.RoundTrip(r)
	if err == nil && res.StatusCode >= 400 {
		origin := "http://" + r.URL.Host
		fmt.Println(res.StatusCode, strings.ReplaceAll(res.Header.Get("WWW-Authenticate"), origin, "http://mcp.test"))
	}
	return res, err
}

// A tool that needs the tokenguard Principal itself, for claims the SDK's
// TokenInfo does not carry.
func ExamplePrincipalFrom() {
	server := mcp.NewServer(&mcp.Implementation{Name: "example", Version: "v1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "tenant"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			p, ok := tgmcp.PrincipalFrom(req) // not tokenguard.PrincipalFrom(ctx): see PrincipalFrom
			if !ok {
				return nil, nil, fmt.Errorf("no authenticated caller")
			}
			var claims struct {
				Tenant string `json:"tenant"`
			}
			if err := p.Claims(&claims); err != nil {
				return nil, nil, err
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: claims.Tenant}}}, nil, nil
		})
	_ = server
}

// The UserID that binds an MCP session: issuer and subject as a JSON pair,
// so that alice of one issuer is not alice of another, and no choice of
// characters makes two pairs one.
func ExampleUserID() {
	fmt.Println(tgmcp.UserID("https://as.example.com", "alice"))
	fmt.Println(tgmcp.UserID("https://other.example.com", "alice"))
	fmt.Println(tgmcp.UserID(`https://as.example.com","x`, "y"))
	fmt.Println(tgmcp.UserID("https://as.example.com", `x","y`))
	// Output:
	// ["https://as.example.com","alice"]
	// ["https://other.example.com","alice"]
	// ["https://as.example.com\",\"x","y"]
	// ["https://as.example.com","x\",\"y"]
}
