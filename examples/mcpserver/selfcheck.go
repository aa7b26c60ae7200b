package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// check is one self-check: it drives the server with the MCP SDK's client
// and returns what it saw, or an error when that is not what tokenguard
// must answer.
type check struct {
	name string
	run  func(ctx context.Context, e *embedded) (string, error)
}

// checks are the self-check's steps, in order.
var checks = []check{
	{"no token", checkNoToken},
	{"token for " + PathMCP, checkWhoami},
	{"no " + ScopeOrdersRead, checkMissingScope},
	{"with " + ScopeOrdersRead, checkListOrders},
	{"token for another resource", checkAudience},
}

// selfCheck runs every check against an embedded set-up and prints each
// outcome. It returns exitOK when all are right.
func selfCheck(ctx context.Context, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	e, err := startEmbedded(ctx, "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "mcpserver: %v\n", err)
		return exitFail
	}
	defer e.Close()
	fmt.Fprintf(stdout, "authorization server %s (embedded)\n", e.as.Issuer)
	printEndpoints(stdout, e.app)
	fmt.Fprintln(stdout)

	failed := 0
	for _, c := range checks {
		got, err := c.run(ctx, e)
		verdict := "ok  "
		if err != nil {
			verdict, got = "FAIL", err.Error()
			failed++
		}
		fmt.Fprintf(stdout, "%s %-27s %s\n", verdict, c.name, got)
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "\n%d of %d checks failed\n", failed, len(checks))
		return exitFail
	}
	fmt.Fprintf(stdout, "\nall %d checks passed\n", len(checks))
	return exitOK
}

// refused connects with token, which must fail with status, and returns
// the challenge the server sent.
func refused(ctx context.Context, endpoint, token string, status int) (string, error) {
	cs, rec, err := connect(ctx, endpoint, token)
	if err == nil {
		cs.Close()
		return "", errors.New("the client connected")
	}
	x, ok := rec.first()
	if !ok {
		return "", fmt.Errorf("no answer: %v", err)
	}
	if x.Status != status {
		return "", fmt.Errorf("%s answered %d, want %d", x.Method, x.Status, status)
	}
	return x.Header.Get("WWW-Authenticate"), nil
}

// checkNoToken: 401, and the challenge's resource_metadata is the URL at
// which this resource's RFC 9728 document is served.
func checkNoToken(ctx context.Context, e *embedded) (string, error) {
	challenge, err := refused(ctx, e.base+PathMCP, "", http.StatusUnauthorized)
	if err != nil {
		return "", err
	}
	metadataURL := e.base + "/.well-known/oauth-protected-resource" + PathMCP
	if want := `resource_metadata="` + metadataURL + `"`; !strings.Contains(challenge, want) {
		return "", fmt.Errorf("challenge %s lacks %s", challenge, want)
	}
	doc, err := fetchMetadata(ctx, metadataURL)
	if err != nil {
		return "", err
	}
	if doc.Resource != e.base+PathMCP || !slices.Equal(doc.AuthorizationServers, []string{e.as.Issuer}) {
		return "", fmt.Errorf("metadata document %+v", doc)
	}
	return "401 " + challenge + "; metadata names resource " + doc.Resource, nil
}

// checkWhoami: a token lists the tools and calls whoami, which sees the
// caller's subject and scopes.
func checkWhoami(ctx context.Context, e *embedded) (string, error) {
	cs, _, err := connect(ctx, e.base+PathMCP, e.token(PathMCP, "alice", "profile", "email"))
	if err != nil {
		return "", err
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		return "", err
	}
	var names []string
	for _, t := range tools.Tools {
		names = append(names, t.Name)
	}
	var c Caller
	if err := callTool(ctx, cs, "whoami", &c); err != nil {
		return "", err
	}
	if c.Subject != "alice" || !slices.Equal(c.Scopes, []string{"profile", "email"}) || c.Issuer != e.as.Issuer {
		return "", fmt.Errorf("whoami returned %+v", c)
	}
	return fmt.Sprintf("tools %v; whoami: sub %s, scopes %v", names, c.Subject, c.Scopes), nil
}

// checkMissingScope: a token for the orders endpoint without its scope
// gets 403 insufficient_scope naming the scope.
func checkMissingScope(ctx context.Context, e *embedded) (string, error) {
	challenge, err := refused(ctx, e.base+PathOrders, e.token(PathOrders, "alice", "profile"), http.StatusForbidden)
	if err != nil {
		return "", err
	}
	if !strings.Contains(challenge, `error="insufficient_scope"`) || !strings.Contains(challenge, `scope="`+ScopeOrdersRead+`"`) {
		return "", fmt.Errorf("challenge %s", challenge)
	}
	return "403 " + challenge, nil
}

// checkListOrders: with the scope, list_orders returns the caller's orders.
func checkListOrders(ctx context.Context, e *embedded) (string, error) {
	cs, _, err := connect(ctx, e.base+PathOrders, e.token(PathOrders, "alice", ScopeOrdersRead))
	if err != nil {
		return "", err
	}
	defer cs.Close()
	var l OrderList
	if err := callTool(ctx, cs, "list_orders", &l); err != nil {
		return "", err
	}
	if l.Owner != "alice" || len(l.Orders) != 2 {
		return "", fmt.Errorf("list_orders returned %+v", l)
	}
	return fmt.Sprintf("list_orders: %d orders of %s", len(l.Orders), l.Owner), nil
}

// checkAudience: a token meant for /mcp, even with the scope, is refused at
// /mcp/orders, another resource.
func checkAudience(ctx context.Context, e *embedded) (string, error) {
	challenge, err := refused(ctx, e.base+PathOrders, e.token(PathMCP, "alice", ScopeOrdersRead), http.StatusUnauthorized)
	if err != nil {
		return "", err
	}
	if !strings.Contains(challenge, `error="invalid_token"`) {
		return "", fmt.Errorf("challenge %s", challenge)
	}
	return "401 " + challenge, nil
}
