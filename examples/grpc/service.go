package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenguard/tokenguard"
	tggrpc "github.com/tokenguard/tokenguard/adapters/grpc"
)

// The orders service, registered by hand so that the example needs no
// protoc: its messages are protobuf's well-known wrappers. A real service
// would register the code protoc-gen-go-grpc generates, in the same way.
const (
	// MethodListOrders answers the caller's orders, "alice: 1, 2" (any valid token).
	MethodListOrders = "/orders.v1.Orders/ListOrders"
	// MethodCreateOrder creates an order for the caller and answers
	// "order 3 for alice" (needs ScopeWrite).
	MethodCreateOrder = "/orders.v1.Orders/CreateOrder"
	// MethodWatchOrders streams the caller's orders, one message each, the
	// first naming the caller ("alice"): a server stream (any valid token).
	MethodWatchOrders = "/orders.v1.Orders/WatchOrders"
)

// Scopes of the orders API: any valid token reads, creating needs ScopeWrite.
const (
	ScopeRead  = "orders:read"
	ScopeWrite = "orders:write"
)

// guardOptions are what the API needs of each method: CreateOrder the write
// scope, the health checks nothing (a load balancer has no token), every
// other method (ListOrders, WatchOrders, and any added later) a valid
// token.
func guardOptions() tggrpc.Options {
	return tggrpc.Options{
		Methods: map[string][]tokenguard.Requirement{
			MethodCreateOrder: {tokenguard.AllScopes(ScopeWrite)},
		},
		Public: []string{healthpb.Health_Check_FullMethodName, healthpb.Health_Watch_FullMethodName},
	}
}

// newServer is the API's gRPC server: the orders and health services
// behind tokenguard's interceptors.
func newServer(g *tokenguard.Guard) *grpc.Server {
	o := guardOptions()
	return register(grpc.NewServer(
		grpc.ChainUnaryInterceptor(tggrpc.UnaryServerInterceptor(g, o)),
		grpc.ChainStreamInterceptor(tggrpc.StreamServerInterceptor(g, o)),
	))
}

// register adds the orders and health services to srv and returns it.
func register(srv *grpc.Server) *grpc.Server {
	srv.RegisterService(&ordersDesc, &orders{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	return srv
}

// orders is the in-memory store behind the service.
type orders struct {
	mu   sync.Mutex
	next int
	own  map[string][]int // order ids by owner
}

func (o *orders) list(owner string) []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int(nil), o.own[owner]...)
}

func (o *orders) create(owner string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.own == nil {
		o.own = map[string][]int{}
	}
	o.next++
	o.own[owner] = append(o.own[owner], o.next)
	return o.next
}

// caller is the subject of the Principal the interceptors put in ctx
// (always there behind them; "" for a server built without them).
func caller(ctx context.Context) string {
	if p, ok := tggrpc.PrincipalFrom(ctx); ok {
		return p.Subject
	}
	return ""
}

func (o *orders) listOrders(ctx context.Context, _ *emptypb.Empty) (*wrapperspb.StringValue, error) {
	ids := o.list(caller(ctx))
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprint(id)
	}
	return wrapperspb.String(caller(ctx) + ": " + strings.Join(s, ", ")), nil
}

func (o *orders) createOrder(ctx context.Context, _ *emptypb.Empty) (*wrapperspb.StringValue, error) {
	return wrapperspb.String(fmt.Sprintf("order %d for %s", o.create(caller(ctx)), caller(ctx))), nil
}

func (o *orders) watchOrders(_ *emptypb.Empty, ss grpc.ServerStream) error {
	who := caller(ss.Context())
	if err := ss.SendMsg(wrapperspb.String(who)); err != nil {
		return err
	}
	for _, id := range o.list(who) {
		if err := ss.SendMsg(wrapperspb.String(fmt.Sprint(id))); err != nil {
			return err
		}
	}
	return nil
}

// unaryHandler adapts f to a grpc.MethodDesc handler, as generated code does.
func unaryHandler(full string, f func(*orders, context.Context, *emptypb.Empty) (*wrapperspb.StringValue, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(emptypb.Empty)
		if err := dec(in); err != nil {
			return nil, err
		}
		call := func(ctx context.Context, req any) (any, error) { return f(srv.(*orders), ctx, req.(*emptypb.Empty)) }
		if interceptor == nil {
			return call(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, call)
	}
}

var ordersDesc = grpc.ServiceDesc{
	ServiceName: "orders.v1.Orders",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "ListOrders", Handler: unaryHandler(MethodListOrders, (*orders).listOrders)},
		{MethodName: "CreateOrder", Handler: unaryHandler(MethodCreateOrder, (*orders).createOrder)},
	},
	Streams: []grpc.StreamDesc{{
		StreamName:    "WatchOrders",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			in := new(emptypb.Empty)
			if err := ss.RecvMsg(in); err != nil {
				return err
			}
			return srv.(*orders).watchOrders(in, ss)
		},
	}},
}
