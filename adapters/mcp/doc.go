// Package tgmcp protects Model Context Protocol servers built with the
// official MCP Go SDK (github.com/modelcontextprotocol/go-sdk) with a
// tokenguard.Guard, and hands each caller's identity to tools the way the
// SDK expects: as its auth.TokenInfo.
//
//	import tgmcp "github.com/tokenguard/tokenguard/adapters/mcp"
//
//	g, err := tokenguard.New(ctx, tokenguard.Config{
//		Issuer:   "https://as.example.com",
//		Resource: "https://mcp.example.com/mcp", // the MCP server's canonical URL
//	})
//	...
//	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
//	mux.Handle(g.MetadataPath(), g.MetadataHandler()) // the RFC 9728 document
//	mux.Handle("/mcp", tgmcp.Middleware(g)(handler))  // any valid token
//
// or, for an endpoint whose every request needs a scope as well:
//
//	mux.Handle("/mcp", tgmcp.Middleware(g, tokenguard.AllScopes("mcp:tools"))(handler))
//
// and, for one whose tools need scopes of their own, Protect (see "Scopes
// per endpoint, and per tool" below).
//
// # What the MCP authorization spec asks, and who answers
//
// An MCP server is an OAuth 2.1 resource server: it publishes RFC 9728
// protected-resource metadata, answers a request without a valid token
// with 401 and a WWW-Authenticate challenge whose resource_metadata points
// at that document, and answers a token that lacks a scope with 403
// insufficient_scope naming the scopes, so that the client can step up.
// The Guard does all of it; this package makes no decision of its own.
// Middleware and Protect call Guard.Check and, on failure,
// Guard.WriteError, so the status, challenge (realm, error,
// error_description, scope, resource_metadata), Retry-After of a 503 and
// JSON body are exactly those of tokenguard.Guard.Handler. The tests run
// the core's conformance table
// (github.com/tokenguard/tokenguard/oauthtest/conformance) through both.
//
// Serve the metadata with Guard.MetadataHandler at Guard.MetadataPath, as
// above: with Config.Resource set to the MCP endpoint's URL and no
// Config.ResourceMetadataURL, that is the path-inserted well-known URL
// (https://mcp.example.com/.well-known/oauth-protected-resource/mcp) named
// in every challenge. Tokens must then carry that URL in aud, which is
// what RFC 8707 resource indicators, required of MCP clients, ask the
// authorization server for.
//
// # What the SDK expects, and how it gets it
//
// The SDK's streamable HTTP handler reads an *auth.TokenInfo from the HTTP
// request's context, copies it into every request it hands to a tool,
// prompt or resource handler (req.Extra.TokenInfo), and binds each
// stateful session to its UserID: a later request of that session with
// another UserID gets 403. Only auth.RequireBearerToken can store it: the
// context key is unexported. So Middleware, once the Guard has accepted
// the request, runs auth.RequireBearerToken on a stand-in request with a
// verifier that returns TokenInfo(p) for the Principal p the Guard
// accepted, and passes the context it produces on to the MCP handler. The
// SDK thus never sees, parses or judges the client's token: it cannot
// answer the client, nor refuse what the Guard accepted (such as a token
// within the Guard's clock leeway). If it ever did refuse, the request
// gets a 500 from Guard.WriteError and the handler is not run (fail
// closed).
//
// A Principal becomes a TokenInfo with Scopes = Principal.Scopes,
// Expiration = Principal.Expiry, UserID = UserID(Principal.Issuer,
// Principal.Subject), and the subject, issuer, client id, token kind and
// the Principal itself in Extra (see TokenInfo and the Extra… keys).
// UserID names the issuer as well as the subject because a subject is
// unique only per issuer: were it the bare sub, alice of one trusted
// issuer (or tenant) could use a session of alice of another. It is an
// encoding of the pair, ["https://as.example.com","alice"], to compare,
// not to show or parse; the bare subject is in Extra[ExtraSubject].
// Tools read the caller as
//
//	if req.Extra != nil && req.Extra.TokenInfo != nil { // nil over stdio or in-memory transports
//		ti := req.Extra.TokenInfo
//		sub, _ := ti.Extra[tgmcp.ExtraSubject].(string)
//		iss, _ := ti.Extra[tgmcp.ExtraIssuer].(string)
//		scopes := ti.Scopes
//		...
//	}
//
// or take the Principal, with all its claims, with PrincipalFrom(req).
// Read the caller from the request, never from the handler's context: a
// stateful session's handlers run in a context derived from the HTTP
// request that created the session, so tokenguard.PrincipalFrom(ctx) or
// auth.TokenInfoFromContext(ctx) there describe the first token of the
// session, not the current one.
//
// # Scopes per endpoint, and per tool
//
// The requirements given to Middleware (tokenguard.AllScopes, AnyScope,
// ClaimIs, Satisfies) apply to every HTTP request of the endpoint it
// wraps: initialize, tools/list, tools/call, the SSE GET and the DELETE.
// That is where the HTTP status, and so the 403 insufficient_scope that
// makes an MCP client step up, can still be chosen; inside the SDK, a
// tool can only answer with a JSON-RPC result.
//
// Tools that need more than the rest take their requirements in
// Protect's Options.Tools, on the same endpoint:
//
//	mux.Handle("/mcp", tgmcp.Protect(g, tgmcp.Options{
//		Require: []tokenguard.Requirement{tokenguard.AllScopes("mcp:tools")},
//		Tools: map[string][]tokenguard.Requirement{
//			"delete_order": {tokenguard.AllScopes("orders:write")},
//		},
//	})(handler))
//
// Protect reads the JSON-RPC body of each POST (a message, or a batch,
// which the SDK accepts from clients of protocol versions before
// 2025-06-18), finds its tools/call messages and checks the requirements
// of each tool called before the SDK sees the request, so a call of
// delete_order with a token that lacks orders:write gets 403 with
// WWW-Authenticate: Bearer …, error="insufficient_scope", scope="orders:write"
// and never runs: the step-up flow of the MCP authorization spec, in
// which the client asks for those scopes and retries (the Go SDK's client
// does so through its OAuthHandler). Tools without an entry, tools/list
// and every other request need Options.Require only, so a client lists
// every tool, those it cannot call yet too.
//
// The challenge names the tool's scopes, as RFC 6750 asks. An MCP client
// following the spec adds them to the scopes it already holds when it
// asks for a new token (the Go SDK's does); one that asks for the
// challenge's scopes alone would lose the endpoint's, so for such clients
// name the endpoint's scopes in the tool's requirement as well
// (AllScopes("mcp:tools", "orders:write")).
//
// Protect reads each body more strictly than the SDK does, so that no body
// can name one tool to Protect and another to the SDK, whose decoder takes
// the last of two equal keys and ignores whatever follows the first JSON
// value: a body whose tool calls cannot be told for certain (a method,
// params or name key twice, or in another case, data after the message,
// a malformed tools/call) gets 400 invalid_request from the Guard, while
// one the SDK refuses on its own (empty, or a truncated message) gets the
// SDK's own answer. Bodies are read up to Options.MaxBodyBytes, by default the SDK's
// own limit of 4 MiB; a longer one gets 413, as the SDK gives it.
//
// Where a tool must be isolated from the rest, and not only need more,
// it still goes on an MCP server of its own, at another URL, and that URL
// is another protected resource: MCP clients take the endpoint's URL as
// the resource, require the metadata found through the challenge to name
// exactly that URL (RFC 9728 §3.3; the Go SDK's client checks it) and ask
// for tokens meant for it (RFC 8707), so a token for one endpoint is of
// no use at the other. Such an endpoint gets its own Guard, with
// Config.Resource set to its URL, that Guard's MetadataHandler at its
// MetadataPath, and its own mcp.Server and StreamableHTTPHandler (sessions
// live in the handler, and must not be reachable through a laxer
// endpoint). The example MCP server in the repository's examples/mcpserver
// does this.
//
// # Why not a TokenVerifier
//
// The SDK's own middleware, auth.RequireBearerToken, takes a TokenVerifier;
// one could be built on the Guard, but through it a client would get the
// SDK's answers instead of the Guard's: a challenge without realm, error or
// error_description, a text/plain body, 500 instead of 503 with
// Retry-After when the authorization server is down, and expiry judged
// again without the Guard's leeway and clock. Middleware has the same
// shape, func(http.Handler) http.Handler, and replaces it.
//
// Browser-based MCP clients need CORS on the MCP endpoint; put the CORS
// middleware in front of Middleware, so that preflight requests, which
// carry no token, are answered before it. Guard.MetadataHandler already
// allows any origin.
//
// The package is named tgmcp so that it does not shadow the SDK's mcp.
package tgmcp
