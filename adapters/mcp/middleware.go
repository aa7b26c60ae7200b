package tgmcp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/tokenguard/tokenguard"
)

// Middleware returns net/http middleware for an MCP endpoint (typically the
// handler of mcp.NewStreamableHTTPHandler) that lets a request through only
// when its bearer token is valid and meets every one of reqs. It is a
// drop-in replacement for the SDK's auth.RequireBearerToken in which every
// decision and every answer is the Guard's: g.Check decides, and a rejected
// request gets g.WriteError's answer, so a client sees
//
//   - 401 with WWW-Authenticate: Bearer realm="…", resource_metadata="…"
//     (and error="invalid_token" for a bad token), the RFC 9728 pointer
//     the MCP authorization spec requires;
//   - 403 error="insufficient_scope", scope="…" when a scope in reqs is
//     missing, so the client can step up;
//   - 400 invalid_request for a malformed request;
//   - 503 with Retry-After when the authorization server cannot be reached
//     (fail closed).
//
// The requirements apply to every request of the endpoint (initialize,
// tools/list, tools/call, the SSE GET, DELETE), since the MCP Go SDK
// serves a whole server per endpoint; a tool that needs more than the
// rest goes on an endpoint of its own, which MCP clients treat as a
// resource of its own, so with a Guard of its own (see the package
// documentation).
//
// A request let through carries the Principal twice: for net/http code,
// under tokenguard.PrincipalFrom(r.Context()), and for the MCP SDK, as
// the auth.TokenInfo that TokenInfo builds, stored where
// auth.RequireBearerToken stores it. The SDK then binds stateful sessions
// to its UserID, which names the token's issuer and subject (see UserID),
// so a session opened by a user of one issuer refuses, with 403, a token
// of another issuer's user who has the same sub; and it hands the
// TokenInfo to every tool as req.Extra.TokenInfo (PrincipalFrom(req)
// returns the Principal from it).
//
// Middleware panics if g is nil.
func Middleware(g *tokenguard.Guard, reqs ...tokenguard.Requirement) func(http.Handler) http.Handler {
	if g == nil {
		panic("tgmcp: Middleware with a nil Guard")
	}
	reqs = slices.Clone(reqs)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := g.Check(r, reqs...)
			if err != nil {
				g.WriteError(w, r, err)
				return
			}
			ctx := r.Context()
			if cur, _ := tokenguard.PrincipalFrom(ctx); cur != p {
				ctx = tokenguard.WithPrincipal(ctx, p)
			}
			if ti := auth.TokenInfoFromContext(ctx); ti == nil || ti.Extra[ExtraPrincipal] != p {
				if ctx, err = withTokenInfo(ctx, TokenInfo(p)); err != nil {
					g.WriteError(w, r, err) // a 500: the SDK refused what it always accepts
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// The SDK keeps TokenInfo under an unexported context key that only
// auth.RequireBearerToken sets. withTokenInfo runs that middleware on a
// stand-in request whose verifier answers with the TokenInfo of the
// Principal the Guard already accepted, and keeps the context the SDK
// passes on. The stand-in, not the client's request, goes through it so
// that the SDK can neither answer the client nor reject a request the
// Guard accepted: it carries a placeholder bearer token in the one form
// the SDK parses (the client's token may have come in another place the
// Guard allows), and the TokenInfo has no Expiration while the SDK looks
// (expiry is the Guard's decision, made with its own clock and leeway).

// sdkStore is auth.RequireBearerToken around a handler that records the
// context it receives.
var sdkStore = auth.RequireBearerToken(
	func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		if s, ok := ctx.Value(storeKey{}).(*store); ok {
			return s.info, nil
		}
		return nil, errors.New("tgmcp: no token info to store")
	},
	&auth.RequireBearerTokenOptions{AllowMissingExpiration: true},
)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
	if s, ok := r.Context().Value(storeKey{}).(*store); ok {
		s.ctx = r.Context()
	}
}))

type storeKey struct{}

// store carries one request's TokenInfo into sdkStore and the resulting
// context out of it.
type store struct {
	info *auth.TokenInfo
	ctx  context.Context
}

// withTokenInfo returns ctx with ti stored as auth.TokenInfoFromContext
// reads it.
func withTokenInfo(ctx context.Context, ti *auth.TokenInfo) (context.Context, error) {
	exp := ti.Expiration
	ti.Expiration = time.Time{}
	s := &store{info: ti}
	stand := (&http.Request{
		Method: http.MethodPost,
		URL:    &url.URL{Path: "/"},
		Header: http.Header{"Authorization": {"Bearer tokenguard-checked"}},
	}).WithContext(context.WithValue(ctx, storeKey{}, s))
	sdkStore.ServeHTTP(discard{}, stand)
	ti.Expiration = exp
	if s.ctx == nil || auth.TokenInfoFromContext(s.ctx) != ti {
		return nil, errors.New("tgmcp: auth.RequireBearerToken did not store the token info")
	}
	return s.ctx, nil
}

// discard is the stand-in request's ResponseWriter: sdkStore writes
// nothing on success, and on failure nothing reaches the client.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
