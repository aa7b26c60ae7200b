package tgmcp_test

import (
	"net/http"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest/conformance"

	tgmcp "github.com/tokenguard/tokenguard/adapters/mcp"
)

// probe is the conformance handler: it reports the Principal as the MCP
// SDK exposes it, from the TokenInfo in the request's context.
func probe(s conformance.Setup) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p *tokenguard.Principal
		if ti := auth.TokenInfoFromContext(r.Context()); ti != nil {
			p, _ = ti.Extra[tgmcp.ExtraPrincipal].(*tokenguard.Principal)
		}
		s.Probe(w, p)
	})
}

// The conformance table through Middleware: every status, challenge,
// Retry-After and body is exactly the core's, and the handler sees the
// Principal through the SDK's TokenInfo.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(_ testing.TB, s conformance.Setup) http.Handler {
		mux := http.NewServeMux()
		mux.Handle(conformance.PathAny, tgmcp.Middleware(s.Guard)(probe(s)))
		mux.Handle(conformance.PathScoped, tgmcp.Middleware(s.Guard, tokenguard.AllScopes(conformance.ScopeRequired))(probe(s)))
		return mux
	})
}

// The same table with the core's Handler in front: Middleware reuses the
// Principal it finds and still stores the TokenInfo.
func TestConformanceBehindHandler(t *testing.T) {
	conformance.Run(t, func(_ testing.TB, s conformance.Setup) http.Handler {
		mux := http.NewServeMux()
		mux.Handle(conformance.PathAny, tgmcp.Middleware(s.Guard)(probe(s)))
		mux.Handle(conformance.PathScoped, tgmcp.Middleware(s.Guard, tokenguard.AllScopes(conformance.ScopeRequired))(probe(s)))
		return s.Guard.Handler(mux)
	})
}
