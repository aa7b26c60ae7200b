package tggrpc

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc"

	"github.com/tokenguard/tokenguard"
)

// Options say what the calls of a gRPC server need, method by method. The
// zero value needs a valid token for every call, and nothing more.
//
// Method names are full method names as gRPC gives them to interceptors,
// "/package.Service/Method" (with the leading slash), and are matched
// exactly: no prefix, no case folding, no pattern. A method without an
// entry in Methods, with no requirement from MethodRequirements, needs a
// valid token (and Require) only: leaving a method out never opens it. Only
// the methods listed in Public are served without a token.
type Options struct {
	// Require applies to every call that is not Public, as a Requirement
	// given to Guard.Require applies to every request of a route. It
	// defaults to none: a valid token is enough.
	Require []tokenguard.Requirement

	// Methods maps a full method name to what a call of that method needs
	// on top of Require, such as
	// "/orders.v1.Orders/CreateOrder": {tokenguard.AllScopes("orders:write")}.
	// A token that does not meet them gets the core's refusal (403
	// insufficient_scope for a scope requirement: codes.PermissionDenied,
	// with the challenge naming the scopes). It defaults to none.
	Methods map[string][]tokenguard.Requirement

	// MethodRequirements, when set, is asked for the requirements of each
	// call that is not Public, with its full method name, on top of Require
	// and Methods (all of them apply): for servers whose rules are easier
	// to compute than to list, such as one scope per service. It must be
	// safe for concurrent use; it is not called for Public methods. Nil
	// means none.
	MethodRequirements func(fullMethod string) []tokenguard.Requirement

	// Public are the full method names served without a token, such as the
	// health checks of a load balancer ("/grpc.health.v1.Health/Check",
	// "/grpc.health.v1.Health/Watch") or server reflection
	// ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"). A call
	// of a public method goes to its handler untouched: no metadata is
	// read, a token it carries is not looked at, and its context holds no
	// Principal. It defaults to none: every method needs a token.
	Public []string
}

// UnaryServerInterceptor returns a unary server interceptor that lets a
// call through to its handler only when its token is valid and meets what
// opts requires of its method, with the Principal in the handler's context
// (PrincipalFrom, or tokenguard.PrincipalFrom). Install it with
// grpc.ChainUnaryInterceptor (or grpc.UnaryInterceptor), and the stream
// interceptor beside it, so that no method is left unguarded.
//
// The Guard decides everything: the call is presented to Guard.Check, with
// the requirements of its method, as an *http.Request (see the package
// documentation): a POST to "/package.Service/Method" whose headers are
// the call's metadata, so that the authorization and dpop metadata are
// its Authorization and DPoP headers, and whose TLS state holds the client
// certificate of a mutual-TLS connection. A refused call gets the status
// code the package documentation lists for the refusal's HTTP status, with
// the refusal's description as message (never the token), and its response
// header metadata carries the challenges Guard.Challenges gives for it in
// www-authenticate, for codes.Unavailable the seconds to wait in
// retry-after, and for a use_dpop_nonce refusal the nonce in dpop-nonce.
// An accepted call in the DPoP scheme gets the Guard's current nonce in
// the dpop-nonce header, when the Guard issues nonces, as Guard.Handler
// sends it.
//
// UnaryServerInterceptor panics if g is nil or opts names a malformed
// method (see Options), or a method that is both Public and in Methods:
// those are mistakes in the server's set-up, not calls to refuse.
func UnaryServerInterceptor(g *tokenguard.Guard, opts Options) grpc.UnaryServerInterceptor {
	p := newPolicy("UnaryServerInterceptor", g, opts)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if p.public(info.FullMethod) {
			return handler(ctx, req)
		}
		pr, r, err := p.check(ctx, info.FullMethod)
		if err != nil {
			_ = grpc.SetHeader(ctx, refusalMD(g, r, err))
			return nil, refusal(err)
		}
		if md := acceptedMD(g, r); md != nil {
			_ = grpc.SetHeader(ctx, md)
		}
		return handler(tokenguard.WithPrincipal(ctx, pr), req)
	}
}

// StreamServerInterceptor returns a stream server interceptor that
// authenticates a stream before its handler runs, exactly as
// UnaryServerInterceptor authenticates a unary call, and hands the handler
// a ServerStream whose Context carries the Principal (PrincipalFrom). A
// refused stream never reaches its handler: it ends with the same status,
// and www-authenticate (and retry-after, dpop-nonce) in the trailer
// metadata, where a client reads the outcome of a stream
// (ClientStream.Trailer, after RecvMsg returned the error). An accepted
// DPoP stream gets dpop-nonce in its header, as a unary call does.
//
// StreamServerInterceptor panics as UnaryServerInterceptor does.
func StreamServerInterceptor(g *tokenguard.Guard, opts Options) grpc.StreamServerInterceptor {
	p := newPolicy("StreamServerInterceptor", g, opts)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if p.public(info.FullMethod) {
			return handler(srv, ss)
		}
		ctx := ss.Context()
		pr, r, err := p.check(ctx, info.FullMethod)
		if err != nil {
			ss.SetTrailer(refusalMD(g, r, err))
			return refusal(err)
		}
		if md := acceptedMD(g, r); md != nil {
			_ = ss.SetHeader(md)
		}
		return handler(srv, &serverStream{ServerStream: ss, ctx: tokenguard.WithPrincipal(ctx, pr)})
	}
}

// PrincipalFrom returns the Principal the interceptors put in the context
// of a call they let through; it is tokenguard.PrincipalFrom, here so that
// code using this package reads as with the other adapters. It reports
// false for a call of a Public method, or one that did not pass through
// them.
func PrincipalFrom(ctx context.Context) (*tokenguard.Principal, bool) {
	return tokenguard.PrincipalFrom(ctx)
}

// serverStream is a ServerStream whose Context carries the Principal.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// policy is Options, checked and precomputed for the request path.
type policy struct {
	g       *tokenguard.Guard
	open    map[string]bool
	methods map[string][]tokenguard.Requirement // Require + Methods[m]
	require []tokenguard.Requirement
	fn      func(string) []tokenguard.Requirement
}

func newPolicy(name string, g *tokenguard.Guard, opts Options) *policy {
	if g == nil {
		panic("tggrpc: " + name + " with a nil Guard")
	}
	p := &policy{
		g:       g,
		open:    make(map[string]bool, len(opts.Public)),
		methods: make(map[string][]tokenguard.Requirement, len(opts.Methods)),
		require: slices.Clip(slices.Clone(opts.Require)),
		fn:      opts.MethodRequirements,
	}
	for _, m := range opts.Public {
		mustBeMethod(name, "Public", m)
		p.open[m] = true
	}
	for m, reqs := range opts.Methods {
		mustBeMethod(name, "Methods", m)
		if p.open[m] {
			panic(fmt.Sprintf("tggrpc: %s: method %q is both Public and in Methods", name, m))
		}
		p.methods[m] = slices.Clip(append(slices.Clone(opts.Require), reqs...))
	}
	return p
}

// mustBeMethod panics unless m is a full method name, "/service/method":
// a name gRPC never gives (without the leading slash, say) would match no
// call, and its requirements would silently apply to none.
func mustBeMethod(name, field, m string) {
	service, method, ok := strings.Cut(strings.TrimPrefix(m, "/"), "/")
	if !strings.HasPrefix(m, "/") || !ok || service == "" || method == "" || strings.Contains(method, "/") {
		panic(fmt.Sprintf("tggrpc: %s: Options.%s names %q, which is not a full method name (\"/package.Service/Method\")", name, field, m))
	}
}

// key is the name fullMethod is looked up by: the path of the request
// newRequest makes for it, so that a method is judged by the name of the
// handler it reaches, even from a server that routes a name without its
// leading slash (grpc-go refuses those).
func key(fullMethod string) string {
	return "/" + strings.TrimPrefix(fullMethod, "/")
}

func (p *policy) public(fullMethod string) bool {
	return len(p.open) > 0 && p.open[key(fullMethod)]
}

// check presents the call to the Guard, as the request r, with its
// method's requirements.
func (p *policy) check(ctx context.Context, fullMethod string) (*tokenguard.Principal, *http.Request, error) {
	reqs, ok := p.methods[key(fullMethod)]
	if !ok {
		reqs = p.require
	}
	if p.fn != nil {
		if more := p.fn(fullMethod); len(more) > 0 {
			reqs = append(reqs, more...) // reqs is clipped: this copies
		}
	}
	r := newRequest(ctx, fullMethod)
	pr, err := p.g.Check(r, reqs...)
	return pr, r, err
}
