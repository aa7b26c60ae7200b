package tgmcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

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
// tools/list, tools/call, the SSE GET, DELETE). Requirements of single
// tools, checked only on the calls of those tools, are Protect's
// Options.Tools; Middleware(g, reqs...) is Protect(g, Options{Require:
// reqs}), and never reads the request body.
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
	return protect(g, Options{Require: reqs})
}

// Options are what Protect requires of the requests of one MCP endpoint.
type Options struct {
	// Require applies to every request of the endpoint, as the
	// requirements given to Middleware do.
	Require []tokenguard.Requirement

	// Tools maps the name of a tool to what a call of it needs on top of
	// Require: a POST whose JSON-RPC body (a message, or a batch of them)
	// holds a tools/call of that tool goes on to the MCP handler only if
	// the token meets every requirement of that tool as well; otherwise it
	// gets Guard.WriteError's answer, for a scope requirement 403
	// insufficient_scope with scope= naming the tool's scopes. A tool
	// without an entry needs Require only. Names are matched exactly, as
	// the SDK matches them. As with Require, the Guard adds a tool's
	// scopes to the scopes_supported of its metadata when it first checks
	// them; Config.ScopesSupported names them all from the start.
	Tools map[string][]tokenguard.Requirement

	// MaxBodyBytes bounds the POST body Protect reads to find the tool
	// calls when Tools is not empty; a longer body gets 413, as the SDK
	// answers it, and reaches no tool. Zero or less means
	// mcp.DefaultMaxRequestBodyBytes (4 MiB), the SDK's own default; set
	// it to the StreamableHTTPOptions.MaxRequestBodyBytes of the handler
	// if that is larger.
	MaxBodyBytes int64
}

// Protect is Middleware with requirements per tool as well as per
// endpoint: one MCP endpoint can serve tools that need different scopes,
// and a call of a tool the token's scopes do not cover gets the 403
// insufficient_scope, naming that tool's scopes, that makes an MCP client
// step up (re-authorize with them and retry), before the SDK sees the
// request:
//
//	mux.Handle("/mcp", tgmcp.Protect(g, tgmcp.Options{
//		Require: []tokenguard.Requirement{tokenguard.AllScopes("mcp:tools")},
//		Tools: map[string][]tokenguard.Requirement{
//			"delete_order": {tokenguard.AllScopes("orders:write")},
//		},
//	})(handler))
//
// Every request is first checked as Middleware checks it, with
// opts.Require; a request refused then gets that answer and its body is
// not read. With opts.Tools not empty, the body of a POST let through is
// read (up to opts.MaxBodyBytes), its tools/call messages found, each
// called tool's requirements checked with Guard.Check against the
// Principal already accepted, and the body handed on to the MCP handler
// unchanged. tools/list, initialize and the rest need opts.Require only,
// so a client lists every tool, including those it may not call yet.
//
// The body is read more strictly than the SDK reads it, so that no body
// names one tool to Protect and another to the SDK: a body whose tool
// calls cannot be told for certain (two method, params or name keys, a
// key that differs from one only in case, data after the message, a batch
// or a tools/call that is not well-formed) gets 400 invalid_request from
// Guard.WriteError, with error_description "ambiguous JSON-RPC message",
// whatever the token; a body the SDK refuses on its own (an empty one, or
// a single message the SDK's jsonrpc.DecodeMessage rejects, such as a
// truncated one) goes on to the SDK, which answers it. No tool whose
// requirements Protect has not checked is run.
//
// In all else Protect is Middleware: the same answers, and the same
// Principal and TokenInfo handed on.
//
// Protect panics if g is nil.
func Protect(g *tokenguard.Guard, opts Options) func(http.Handler) http.Handler {
	if g == nil {
		panic("tgmcp: Protect with a nil Guard")
	}
	return protect(g, opts)
}

// errAmbiguous answers a body whose tool calls cannot be told for
// certain; a new one each time, since an ErrorHandler gets it.
func errAmbiguous() *tokenguard.Error {
	return &tokenguard.Error{
		Status:      http.StatusBadRequest,
		Code:        tokenguard.CodeInvalidRequest,
		Description: "ambiguous JSON-RPC message",
		Reason:      tokenguard.ReasonRequestInvalid,
		Err:         errors.New("tgmcp: the tools a JSON-RPC body calls cannot be told for certain (duplicate or case-folded keys, data after the message, or a malformed tools/call)"),
	}
}

func protect(g *tokenguard.Guard, opts Options) func(http.Handler) http.Handler {
	reqs := slices.Clone(opts.Require)
	tools := make(map[string][]tokenguard.Requirement, len(opts.Tools))
	for name, rs := range opts.Tools {
		if len(rs) > 0 {
			tools[name] = slices.Clone(rs)
		}
	}
	maxBody := opts.MaxBodyBytes
	if maxBody <= 0 {
		maxBody = mcp.DefaultMaxRequestBodyBytes
	}
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
			r = r.WithContext(ctx)
			if len(tools) > 0 && r.Method == http.MethodPost {
				if !checkTools(w, r, g, tools, maxBody) {
					return
				}
			}
			if ti := auth.TokenInfoFromContext(ctx); ti == nil || ti.Extra[ExtraPrincipal] != p {
				if ctx, err = withTokenInfo(ctx, TokenInfo(p)); err != nil {
					g.WriteError(w, r, err) // a 500: the SDK refused what it always accepts
					return
				}
				r = r.WithContext(ctx)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// checkTools reads r's body (r is a copy the middleware made, whose
// context holds the Principal), checks the requirements of every tool it
// calls and puts the body back for the MCP handler. When it reports
// false it has answered the request.
func checkTools(w http.ResponseWriter, r *http.Request, g *tokenguard.Guard, tools map[string][]tokenguard.Requirement, maxBody int64) bool {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			// The SDK's answers to the same failures.
			if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
				http.Error(w, fmt.Sprintf("request body exceeds %d bytes", mbe.Limit), http.StatusRequestEntityTooLarge)
			} else {
				http.Error(w, "failed to read body", http.StatusBadRequest)
			}
			return false
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	names, ok := toolCalls(body)
	if !ok {
		if sdkMayRead(body) {
			g.WriteError(w, r, errAmbiguous())
			return false
		}
		return true // the SDK refuses it too, with its own answer
	}
	var need []tokenguard.Requirement
	for _, name := range names {
		need = append(need, tools[name]...)
	}
	if len(need) > 0 {
		if _, err := g.Check(r, need...); err != nil {
			g.WriteError(w, r, err)
			return false
		}
	}
	return true
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
