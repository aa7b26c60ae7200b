package tggrpc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenguard/tokenguard"
	tggrpc "github.com/tokenguard/tokenguard/adapters/grpc"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// exampleResource is the resource identifier of the examples' Guards, so
// that their challenges print the same on every run.
const exampleResource = "https://orders.example"

// exampleGuard starts an authorization server and a Guard that trusts it,
// for the examples.
func exampleGuard() (*oauthtest.Server, *tokenguard.Guard) {
	as := oauthtest.NewServer(oauthtest.Options{}) // stands in for the real authorization server
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuer:            as.Issuer,
		Resource:          exampleResource, // the audience, the realm and the metadata URL of challenges
		InsecureAllowHTTP: true,            // the test server is plain HTTP on loopback
	})
	if err != nil {
		log.Fatal(err)
	}
	return as, g
}

// exampleDial serves srv in memory and returns a client connection to it.
func exampleDial(srv *grpc.Server) *grpc.ClientConn {
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///orders",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	return conn
}

// A server whose health Check stays open to the load balancer, whose List
// needs the ops:read scope and whose every other method (here the Watch
// stream) needs a valid token. A refusal carries the RFC 6750 challenge in
// the www-authenticate metadata: the response header of a unary call, the
// trailer of a stream.
func Example() {
	as, g := exampleGuard()
	defer as.Close()
	defer g.Close()

	opts := tggrpc.Options{
		Methods: map[string][]tokenguard.Requirement{
			healthpb.Health_List_FullMethodName: {tokenguard.AllScopes("ops:read")},
		},
		Public: []string{healthpb.Health_Check_FullMethodName},
	}
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(tggrpc.UnaryServerInterceptor(g, opts)),
		grpc.ChainStreamInterceptor(tggrpc.StreamServerInterceptor(g, opts)),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	defer srv.Stop()
	conn := exampleDial(srv)
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	withToken := func(token string) context.Context {
		if token == "" {
			return context.Background()
		}
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	}
	show := func(call string, err error, md metadata.MD) {
		st := status.Convert(err)
		fmt.Printf("%s: %v %q\n", call, st.Code(), st.Message())
		for _, c := range md.Get("www-authenticate") {
			fmt.Println("  www-authenticate:", c)
		}
	}

	_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{})
	show("Check, no token", err, nil)

	var header metadata.MD
	_, err = client.List(withToken(""), &healthpb.HealthListRequest{}, grpc.Header(&header))
	show("List, no token", err, header)

	reader := as.Mint(oauthtest.Claims{"aud": exampleResource, "scope": "orders:read"})
	_, err = client.List(withToken(reader), &healthpb.HealthListRequest{}, grpc.Header(&header))
	show("List, without ops:read", err, header)

	operator := as.Mint(oauthtest.Claims{"aud": exampleResource, "scope": "ops:read"})
	_, err = client.List(withToken(operator), &healthpb.HealthListRequest{}, grpc.Header(&header))
	show("List, with ops:read", err, nil)

	watch, err := client.Watch(withToken(""), &healthpb.HealthCheckRequest{})
	if err == nil {
		_, err = watch.Recv()
		show("Watch, no token", err, watch.Trailer())
	}
	// Output:
	// Check, no token: OK ""
	// List, no token: Unauthenticated "bearer token required"
	//   www-authenticate: Bearer realm="https://orders.example", scope="ops:read", resource_metadata="https://orders.example/.well-known/oauth-protected-resource"
	// List, without ops:read: PermissionDenied "token lacks a required scope"
	//   www-authenticate: Bearer realm="https://orders.example", error="insufficient_scope", error_description="token lacks a required scope", scope="ops:read", resource_metadata="https://orders.example/.well-known/oauth-protected-resource"
	// List, with ops:read: OK ""
	// Watch, no token: Unauthenticated "bearer token required"
	//   www-authenticate: Bearer realm="https://orders.example", resource_metadata="https://orders.example/.well-known/oauth-protected-resource"
}

// A handler reads the caller with PrincipalFrom. The service here is
// registered by hand, with a wrapperspb message, where a real one would
// use the code protoc generates.
func ExamplePrincipalFrom() {
	as, g := exampleGuard()
	defer as.Close()
	defer g.Close()

	whoami := func(ctx context.Context, _ *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		p, _ := tggrpc.PrincipalFrom(ctx) // always there behind the interceptor
		return wrapperspb.String(fmt.Sprintf("%s with %s", p.Subject, strings.Join(p.Scopes, ","))), nil
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(tggrpc.UnaryServerInterceptor(g, tggrpc.Options{})))
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "orders.v1.Orders",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "WhoAmI", Handler: func(_ any, ctx context.Context, dec func(any) error, next grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			info := &grpc.UnaryServerInfo{FullMethod: "/orders.v1.Orders/WhoAmI"}
			return next(ctx, in, info, func(ctx context.Context, req any) (any, error) { return whoami(ctx, req.(*wrapperspb.StringValue)) })
		}}},
	}, struct{}{})
	defer srv.Stop()
	conn := exampleDial(srv)
	defer conn.Close()

	token := as.Mint(oauthtest.Claims{"sub": "alice", "aud": exampleResource, "scope": "orders:read orders:write"})
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	out := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, "/orders.v1.Orders/WhoAmI", wrapperspb.String(""), out); err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.GetValue())
	// Output:
	// alice with orders:read,orders:write
}

// Requirements computed from the method name rather than listed: every
// method of the admin service needs the admin scope, on top of a valid
// token for all of them; server reflection stays open for tools such as
// grpcurl.
func ExampleOptions() {
	opts := tggrpc.Options{
		MethodRequirements: func(fullMethod string) []tokenguard.Requirement {
			if strings.HasPrefix(fullMethod, "/orders.v1.Admin/") {
				return []tokenguard.Requirement{tokenguard.AllScopes("orders:admin")}
			}
			return nil
		},
		Public: []string{
			"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
			"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
		},
	}
	fmt.Println(len(opts.MethodRequirements("/orders.v1.Admin/DeleteOrder")), len(opts.MethodRequirements("/orders.v1.Orders/GetOrder")))
	// Output:
	// 1 0
}
