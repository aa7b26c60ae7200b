package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// embedded is the MCP server with an in-process authorization server, both
// on loopback.
type embedded struct {
	as   *oauthtest.Server
	app  *app
	base string // http://127.0.0.1:port

	stop context.CancelFunc
	done chan error
}

// startEmbedded starts an authorization server, and the MCP server on addr
// trusting it. Close stops both.
func startEmbedded(ctx context.Context, addr string) (*embedded, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	base := "http://" + ln.Addr().String()
	as := oauthtest.NewServer(oauthtest.Options{
		Resource: base + PathMCP, // the default aud of minted tokens
		Scopes:   []string{ScopeOrdersRead},
	})
	a, err := newApp(ctx, tokenguard.Config{
		Issuer:            as.Issuer,
		InsecureAllowHTTP: true, // both servers speak plain HTTP on loopback
	}, base)
	if err != nil {
		ln.Close()
		as.Close()
		return nil, err
	}
	ctx, stop := context.WithCancel(ctx)
	e := &embedded{as: as, app: a, base: base, stop: stop, done: make(chan error, 1)}
	go func() { e.done <- serve(ctx, ln, a.handler) }()
	return e, nil
}

// Close stops the MCP server, then the Guards and the authorization server.
func (e *embedded) Close() error {
	e.stop()
	err := <-e.done
	e.app.Close()
	e.as.Close()
	return err
}

// token mints an access token for the resource at path (base+path is its
// aud) with the given subject and scopes, as the authorization server
// would issue one to a client that asked for that resource (RFC 8707).
func (e *embedded) token(path, sub string, scopes ...string) string {
	claims := oauthtest.Claims{"sub": sub, "aud": e.base + path, "client_id": "mcp-demo-client"}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	return e.as.Mint(claims)
}

// serveEmbedded serves with the embedded authorization server until ctx
// ends, after printing tokens to try.
func serveEmbedded(ctx context.Context, addr string, stdout, stderr io.Writer) int {
	e, err := startEmbedded(ctx, addr)
	if err != nil {
		fmt.Fprintf(stderr, "mcpserver: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "authorization server %s (embedded)\n", e.as.Issuer)
	printEndpoints(stdout, e.app)
	fmt.Fprintf(stdout, "\nTokens (valid for an hour), sent as Authorization: Bearer <token>:\n")
	fmt.Fprintf(stdout, "  for %s, alice:\n    %s\n", PathMCP, e.token(PathMCP, "alice", "profile"))
	fmt.Fprintf(stdout, "  for %s, alice, %s:\n    %s\n", PathOrders, ScopeOrdersRead, e.token(PathOrders, "alice", ScopeOrdersRead))
	fmt.Fprintf(stdout, "  for %s, alice, without %s (403):\n    %s\n", PathOrders, ScopeOrdersRead, e.token(PathOrders, "alice", "profile"))
	fmt.Fprintf(stdout, "\nserving on %s (Ctrl-C stops)\n", e.base)
	<-ctx.Done()
	if err := e.Close(); err != nil {
		fmt.Fprintf(stderr, "mcpserver: %v\n", err)
		return exitFail
	}
	return exitOK
}
