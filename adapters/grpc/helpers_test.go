package tggrpc_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenguard/tokenguard"
	tggrpc "github.com/tokenguard/tokenguard/adapters/grpc"
	"github.com/tokenguard/tokenguard/oauthtest"
)

const rsClient, rsSecret = "tggrpc-test-rs", "tggrpc test secret"

// The test service, registered by hand (no generated code): tgtest.Orders
// with unary Get (any valid token), unary Create (orders:write in
// testOptions), unary Ping (public in testOptions) and the server stream
// Watch (any valid token). Every handler answers what it saw: "sub kind"
// of the Principal in its context, or "-".
const (
	methodGet    = "/tgtest.Orders/Get"
	methodCreate = "/tgtest.Orders/Create"
	methodPing   = "/tgtest.Orders/Ping"
	methodWatch  = "/tgtest.Orders/Watch"
	scopeWrite   = "orders:write"
)

// testOptions are the Options most tests use.
func testOptions() tggrpc.Options {
	return tggrpc.Options{
		Methods: map[string][]tokenguard.Requirement{methodCreate: {tokenguard.AllScopes(scopeWrite)}},
		Public:  []string{methodPing},
	}
}

// recorder is the service implementation: it counts the calls that reached
// a handler and keeps the last Principal seen.
type recorder struct {
	calls atomic.Int64
	last  atomic.Pointer[tokenguard.Principal]
}

// saw records a call reaching a handler with ctx and describes it.
func (rc *recorder) saw(ctx context.Context) string {
	rc.calls.Add(1)
	p, ok := tggrpc.PrincipalFrom(ctx)
	if !ok {
		return "-"
	}
	rc.last.Store(p)
	return p.Subject + " " + p.Kind.String()
}

func unaryMethod(name string) grpc.MethodDesc {
	full := "/tgtest.Orders/" + name
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, _ any) (any, error) {
				return wrapperspb.String(srv.(*recorder).saw(ctx)), nil
			}
			if interceptor == nil {
				return h(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, h)
		},
	}
}

var ordersDesc = grpc.ServiceDesc{
	ServiceName: "tgtest.Orders",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{unaryMethod("Get"), unaryMethod("Create"), unaryMethod("Ping")},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			in := new(wrapperspb.StringValue)
			if err := ss.RecvMsg(in); err != nil {
				return err
			}
			return ss.SendMsg(wrapperspb.String(srv.(*recorder).saw(ss.Context())))
		},
	}},
}

// newGuard starts an authorization server and a Guard trusting it through
// its RFC 9728 metadata, with introspection for opaque tokens; edit, when
// not nil, changes the Config first. Both are closed when t ends.
func newGuard(t testing.TB, edit func(*tokenguard.Config)) (*oauthtest.Server, *tokenguard.Guard) {
	t.Helper()
	as := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(as.Close)
	as.RegisterClient(rsClient, rsSecret)
	cfg := tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true,
		Introspection:       tokenguard.IntrospectionConfig{ClientID: rsClient, ClientSecret: rsSecret},
	}
	if edit != nil {
		edit(&cfg)
	}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return as, g
}

// newServer is a gRPC server with the test service behind both
// interceptors of g and opts, and extra server options.
func newServer(g *tokenguard.Guard, opts tggrpc.Options, extra ...grpc.ServerOption) (*grpc.Server, *recorder) {
	rc := new(recorder)
	so := append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(tggrpc.UnaryServerInterceptor(g, opts)),
		grpc.ChainStreamInterceptor(tggrpc.StreamServerInterceptor(g, opts)),
	}, extra...)
	srv := grpc.NewServer(so...)
	srv.RegisterService(&ordersDesc, rc)
	return srv, rc
}

// serveBufconn serves srv over an in-memory listener and returns a client
// connection to it; both are closed when t ends.
func serveBufconn(t testing.TB, srv *grpc.Server) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// start is newServer served over bufconn.
func start(t testing.TB, g *tokenguard.Guard, opts tggrpc.Options, extra ...grpc.ServerOption) (*grpc.ClientConn, *recorder) {
	t.Helper()
	srv, rc := newServer(g, opts, extra...)
	return serveBufconn(t, srv), rc
}

// outcome is what a client saw of one call.
type outcome struct {
	reply string      // the handler's answer; "" when refused
	code  codes.Code  // codes.OK on success
	msg   string      // the status message
	md    metadata.MD // header metadata (unary) or trailer (stream)
	trail metadata.MD // the trailer of a unary call
}

// challenge is the www-authenticate metadata, all values joined with "\n"
// (one value is expected).
func (o outcome) challenge() string { return strings.Join(o.md.Get("www-authenticate"), "\n") }

// retryAfter is the retry-after metadata, joined likewise.
func (o outcome) retryAfter() string { return strings.Join(o.md.Get("retry-after"), "\n") }

// authMD is the outgoing metadata for authorization values (none, one or
// more), with further key-value pairs.
func authMD(authorization []string, kv ...string) metadata.MD {
	md := metadata.Pairs(kv...)
	if len(authorization) > 0 {
		md["authorization"] = authorization
	}
	return md
}

// unary calls method on conn with md as outgoing metadata.
func unary(t testing.TB, conn *grpc.ClientConn, method string, md metadata.MD) outcome {
	t.Helper()
	ctx := metadata.NewOutgoingContext(context.Background(), md)
	var header, trailer metadata.MD
	out := new(wrapperspb.StringValue)
	err := conn.Invoke(ctx, method, wrapperspb.String("hi"), out, grpc.Header(&header), grpc.Trailer(&trailer))
	st := status.Convert(err)
	o := outcome{code: st.Code(), msg: st.Message(), md: header, trail: trailer}
	if err == nil {
		o.reply = out.GetValue()
	}
	return o
}

// stream opens method as a server stream on conn with md as outgoing
// metadata, sends one message and reads one; md of the outcome is the
// trailer.
func stream(t testing.TB, conn *grpc.ClientConn, method string, md metadata.MD) outcome {
	t.Helper()
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(context.Background(), md))
	defer cancel()
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: "Watch", ServerStreams: true}, method)
	if err != nil {
		st := status.Convert(err)
		return outcome{code: st.Code(), msg: st.Message()}
	}
	if err := cs.SendMsg(wrapperspb.String("hi")); err != nil {
		t.Fatalf("SendMsg: %v", err)
	}
	if err := cs.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	out := new(wrapperspb.StringValue)
	err = cs.RecvMsg(out)
	var o outcome
	if err == nil {
		o.reply = out.GetValue()
		err = cs.RecvMsg(out) // the end of the stream, io.EOF
		if st, ok := status.FromError(err); ok && st.Code() != codes.OK {
			t.Fatalf("end of stream: %v", err)
		}
		err = nil
	}
	st := status.Convert(err)
	o.code, o.msg, o.md = st.Code(), st.Message(), cs.Trailer()
	return o
}

// wantChallenge is the exact challenge of a Guard without DPoP: the core's
// format, written out here so that the test does not rely on the code it
// checks.
func wantChallenge(g *tokenguard.Guard, code, desc string, extra ...string) string {
	parts := []string{`realm="` + g.Resource() + `"`}
	if code != "" {
		parts = append(parts, `error="`+code+`"`, `error_description="`+desc+`"`)
	}
	parts = append(parts, extra...)
	parts = append(parts, `resource_metadata="`+g.ResourceMetadataURL()+`"`)
	return "Bearer " + strings.Join(parts, ", ")
}

// bearer is the authorization value of token.
func bearer(token string) []string { return []string{"Bearer " + token} }
