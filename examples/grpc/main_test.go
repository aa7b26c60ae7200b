package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenguard/tokenguard"
	tggrpc "github.com/tokenguard/tokenguard/adapters/grpc"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// noEnv is an empty environment, so a variable set where the tests run
// cannot switch the program to -discovery mode.
func noEnv(string) string { return "" }

// outcomes are the self-check's result lines, with runs of spaces as one.
var outcomes = []string{
	"public grpc.health.v1.Health/Check -> OK ok",
	"valid token orders.v1.Orders/ListOrders -> OK ok",
	"no token orders.v1.Orders/ListOrders -> Unauthenticated ok",
	"missing scope orders.v1.Orders/CreateOrder -> PermissionDenied ok",
	"write scope orders.v1.Orders/CreateOrder -> OK ok",
	"opaque token orders.v1.Orders/ListOrders -> OK ok",
	"two tokens orders.v1.Orders/ListOrders -> InvalidArgument ok",
	"stream, token orders.v1.Orders/WatchOrders -> OK ok",
	"stream, none orders.v1.Orders/WatchOrders -> Unauthenticated ok",
	"all 9 outcomes as expected",
}

func lines(s string) map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(s, "\n") {
		m[strings.Join(strings.Fields(l), " ")] = true
	}
	return m
}

func TestSelfCheck(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), nil, noEnv, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	got := lines(stdout.String())
	for _, want := range outcomes {
		if !got[want] {
			t.Errorf("output lacks %q\n%s", want, stdout.String())
		}
	}
	if strings.Contains(stdout.String(), "FAIL") {
		t.Errorf("output:\n%s", stdout.String())
	}
}

// The self-check catches a server that is not protected, or whose
// CreateOrder lacks its scope requirement, and then exits 1.
func TestSelfCheckFails(t *testing.T) {
	for name, build := range map[string]func(*tokenguard.Guard) *grpc.Server{
		"unprotected": func(*tokenguard.Guard) *grpc.Server { return register(grpc.NewServer()) },
		"no scope on CreateOrder": func(g *tokenguard.Guard) *grpc.Server {
			o := tggrpc.Options{Public: guardOptions().Public}
			return register(grpc.NewServer(
				grpc.ChainUnaryInterceptor(tggrpc.UnaryServerInterceptor(g, o)),
				grpc.ChainStreamInterceptor(tggrpc.StreamServerInterceptor(g, o))))
		},
		"stream unguarded": func(g *tokenguard.Guard) *grpc.Server {
			return register(grpc.NewServer(grpc.ChainUnaryInterceptor(tggrpc.UnaryServerInterceptor(g, guardOptions()))))
		},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := selfCheck(t.Context(), build, &stdout, &stderr); code != exitFail {
				t.Errorf("exit %d, want %d\n%s", code, exitFail, stdout.String())
			}
			if !strings.Contains(stdout.String(), "FAIL") || !strings.Contains(stdout.String(), "outcomes were wrong") {
				t.Errorf("output:\n%s", stdout.String())
			}
		})
	}
}

func TestUsage(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		want string
	}{
		{"help", []string{"-h"}, nil, exitOK, "Usage: grpc"},
		{"unknown flag", []string{"-nope"}, nil, exitUsage, "flag provided but not defined"},
		{"argument", []string{"extra"}, nil, exitUsage, "unexpected arguments"},
		{"addr without discovery", []string{"-addr", ":0"}, nil, exitUsage, "-addr applies only with -discovery"},
		{"insecure-http without discovery", []string{"-insecure-http"}, nil, exitUsage, "-insecure-http applies only with -discovery"},
		{"secret without id", []string{"-discovery", "https://api.example/.well-known/oauth-protected-resource"},
			map[string]string{EnvClientSecret: "s"}, exitUsage, EnvClientSecret + " is set but " + EnvClientID + " is not"},
		{"unreachable metadata", []string{"-discovery", "http://127.0.0.1:1/.well-known/oauth-protected-resource", "-insecure-http"}, nil, exitFail, "grpc: "},
		{"http metadata without -insecure-http", []string{"-discovery", "http://127.0.0.1:1/.well-known/oauth-protected-resource"}, nil, exitFail, "grpc: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), c.args, func(k string) string { return c.env[k] }, &stdout, &stderr)
			if code != c.code || !strings.Contains(stderr.String(), c.want) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", code, c.code, c.want, stderr.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the program's goroutine and the
// test's.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Discovery mode end to end: the Guard from an authorization server's
// RFC 9728 metadata (the environment variable standing for the flag),
// serving on the address given, a JWT and an opaque token (introspected
// with the credentials of the environment), a refusal, and a clean stop.
func TestDiscoveryMode(t *testing.T) {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient("api", "api-secret")
	env := map[string]string{EnvResourceMetadataURL: as.ResourceMetadataURL(), EnvClientID: "api", EnvClientSecret: "api-secret"}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"-addr", "127.0.0.1:0", "-insecure-http"}, func(k string) string { return env[k] }, &stdout, &stderr)
	}()
	serving := regexp.MustCompile(`serving gRPC on (127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := serving.FindStringSubmatch(stdout.String()); m != nil {
			addr = m[1]
		}
		select {
		case code := <-exited:
			t.Fatalf("exited %d before serving\n%s%s", code, stdout.String(), stderr.String())
		default:
		}
	}
	if addr == "" {
		t.Fatalf("not serving after 10s\n%s%s", stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "introspection on") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	call := func(token string) (string, error) {
		ctx := t.Context()
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		out := new(wrapperspb.StringValue)
		err := conn.Invoke(ctx, MethodListOrders, &emptypb.Empty{}, out)
		return out.GetValue(), err
	}
	if reply, err := call(as.Mint(oauthtest.Claims{"sub": "alice"})); err != nil || reply != "alice: " {
		t.Errorf("JWT: %q %v", reply, err)
	}
	if reply, err := call(as.MintOpaque(oauthtest.Claims{"sub": "bob"})); err != nil || reply != "bob: " {
		t.Errorf("opaque token: %q %v", reply, err)
	}
	if _, err := call(""); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no token: %v", err)
	}
	cancel()
	select {
	case code := <-exited:
		if code != exitOK {
			t.Errorf("exit %d after the stop\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still serving 10s after the stop")
	}
}
