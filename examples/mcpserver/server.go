package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tokenguard/tokenguard"

	tgmcp "github.com/tokenguard/tokenguard/adapters/mcp"
)

// The server's two MCP endpoints. Each is an MCP server of its own and a
// protected resource of its own, identified by its URL: MCP clients ask
// for tokens meant for that URL (RFC 8707) and check that the metadata the
// challenge points to names it (RFC 9728 §3.3).
const (
	// PathMCP serves the whoami tool to any valid token.
	PathMCP = "/mcp"
	// PathOrders serves the list_orders tool to tokens with ScopeOrdersRead.
	PathOrders = "/mcp/orders"
	// ScopeOrdersRead is what every request to PathOrders needs.
	ScopeOrdersRead = "orders:read"
)

// app is the MCP server: one Guard per endpoint, and the handler that
// serves both endpoints and their RFC 9728 documents.
type app struct {
	general *tokenguard.Guard // resource base+PathMCP
	orders  *tokenguard.Guard // resource base+PathOrders
	handler http.Handler
}

// newApp builds the server for the public base URL (scheme and host, no
// path). cfg says which authorization server to trust and how to reach
// it; its Resource and ScopesSupported are set here, per endpoint.
func newApp(ctx context.Context, cfg tokenguard.Config, base string) (*app, error) {
	general, err := newGuard(ctx, cfg, base+PathMCP, nil)
	if err != nil {
		return nil, err
	}
	orders, err := newGuard(ctx, cfg, base+PathOrders, []string{ScopeOrdersRead})
	if err != nil {
		general.Close()
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	// Each resource's metadata, at the path-inserted well-known URL its
	// challenges name: /.well-known/oauth-protected-resource/mcp and
	// /.well-known/oauth-protected-resource/mcp/orders.
	mux.Handle(general.MetadataPath(), general.MetadataHandler())
	mux.Handle(orders.MetadataPath(), orders.MetadataHandler())
	// Each endpoint has its own SDK handler, so a session opened on one
	// cannot be used on the other.
	mux.Handle(PathMCP, tgmcp.Middleware(general)(streamable(newGeneralServer())))
	mux.Handle(PathOrders, tgmcp.Middleware(orders, tokenguard.AllScopes(ScopeOrdersRead))(streamable(newOrdersServer())))
	return &app{general: general, orders: orders, handler: mux}, nil
}

func newGuard(ctx context.Context, cfg tokenguard.Config, resource string, scopes []string) (*tokenguard.Guard, error) {
	cfg.Resource = resource
	cfg.ScopesSupported = scopes
	g, err := tokenguard.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("resource %s: %w", resource, err)
	}
	return g, nil
}

// Close stops both Guards' background work.
func (a *app) Close() {
	a.general.Close()
	a.orders.Close()
}

func streamable(s *mcp.Server) http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
}

// Caller is what whoami returns: the caller as the token describes it,
// read from the SDK's TokenInfo.
type Caller struct {
	Subject  string   `json:"sub"`
	Scopes   []string `json:"scopes"`
	Issuer   string   `json:"iss"`
	ClientID string   `json:"client_id,omitempty"`
}

// newGeneralServer is the MCP server at PathMCP.
func newGeneralServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "tokenguard-mcpserver", Version: "v1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "whoami",
		Description: "Returns the caller's subject, scopes, issuer and client id, as the access token describes them.",
	}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, Caller, error) {
		// The caller comes from the request, where the SDK puts the
		// TokenInfo that tgmcp.Middleware stored; never from ctx.
		if req.Extra == nil || req.Extra.TokenInfo == nil {
			return nil, Caller{}, fmt.Errorf("no authenticated caller")
		}
		// Not ti.UserID: that names the issuer as well (it is what binds
		// the session), the bare sub is in Extra.
		ti := req.Extra.TokenInfo
		c := Caller{Scopes: ti.Scopes}
		c.Subject, _ = ti.Extra[tgmcp.ExtraSubject].(string)
		c.Issuer, _ = ti.Extra[tgmcp.ExtraIssuer].(string)
		c.ClientID, _ = ti.Extra[tgmcp.ExtraClientID].(string)
		return nil, c, nil
	})
	return s
}

// Order is one order of the demo store.
type Order struct {
	ID    string `json:"id"`
	Item  string `json:"item"`
	Owner string `json:"owner"`
}

// orders is the demo store, read-only.
var orders = []Order{
	{ID: "A-1001", Item: "mechanical keyboard", Owner: "alice"},
	{ID: "A-1002", Item: "USB-C cable", Owner: "alice"},
	{ID: "B-2001", Item: "standing desk", Owner: "bob"},
}

// OrderList is what list_orders returns.
type OrderList struct {
	Owner  string  `json:"owner"`
	Orders []Order `json:"orders"`
}

// newOrdersServer is the MCP server at PathOrders. Its tool needs no
// scope check of its own: every request to the endpoint has passed
// tgmcp.Middleware with AllScopes(ScopeOrdersRead).
func newOrdersServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "tokenguard-mcpserver-orders", Version: "v1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{
		Name:        "list_orders",
		Description: "Lists the caller's orders. The endpoint requires the " + ScopeOrdersRead + " scope.",
	}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, OrderList, error) {
		p, ok := tgmcp.PrincipalFrom(req)
		if !ok {
			return nil, OrderList{}, fmt.Errorf("no authenticated caller")
		}
		out := OrderList{Owner: p.Subject, Orders: []Order{}}
		for _, o := range orders {
			if o.Owner == p.Subject {
				out.Orders = append(out.Orders, o)
			}
		}
		return nil, out, nil
	})
	return s
}
