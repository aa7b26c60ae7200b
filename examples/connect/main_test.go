package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// The self-check exits 0 having found every outcome as README.md
// describes it.
func TestSelfCheck(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), nil, func(string) string { return "" }, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "all 24 outcomes as expected") {
		t.Errorf("output:\n%s", &stdout)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		msg  string
	}{
		{[]string{"-h"}, nil, exitOK, "Usage: connect"},
		{[]string{"-nope"}, nil, exitUsage, "-nope"},
		{[]string{"serve"}, nil, exitUsage, "unexpected arguments"},
		{[]string{"-insecure-http"}, nil, exitUsage, "only with -discovery"},
		{nil, map[string]string{envDiscovery: "https://a.example/m", envClientSecret: "s"}, exitUsage, envClientID + " is not"},
		{[]string{"-discovery", "http://127.0.0.1:1/.well-known/oauth-protected-resource"}, nil, exitFail, "connect:"},
	} {
		var stderr bytes.Buffer
		env := func(k string) string { return tc.env[k] }
		if code := run(t.Context(), tc.args, env, io.Discard, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%q %v: exit %d, want %d; stderr lacks %q:\n%s", tc.args, tc.env, code, tc.code, tc.msg, &stderr)
		}
	}
}

// fixture is an authorization server, a Guard trusting it, and both
// wirings served on loopback (HTTP/1.1 and h2c).
type fixture struct {
	as    *oauthtest.Server
	g     *tokenguard.Guard
	bases map[string]string // wiring name: base URL
}

func newFixture(t *testing.T, edit func(*tokenguard.Config)) *fixture {
	t.Helper()
	as := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(as.Close)
	as.RegisterClient(apiClient, apiSecret)
	cfg := tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true,
		Introspection:       tokenguard.IntrospectionConfig{ClientID: apiClient, ClientSecret: apiSecret},
	}
	if edit != nil {
		edit(&cfg)
	}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	f := &fixture{as: as, g: g, bases: map[string]string{}}
	for _, w := range wirings {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- serve(ctx, ln, w.build(g)) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
		f.bases[w.name] = "http://" + ln.Addr().String()
	}
	return f
}

// call calls procedure at base with the Authorization values auth, over
// the gRPC protocol (HTTP/2 without TLS) when grpc is set and the Connect
// protocol (HTTP/1.1) otherwise.
func call(t *testing.T, base, procedure string, grpc bool, auth ...string) (*connect.Response[wrapperspb.StringValue], *connect.Error) {
	t.Helper()
	httpClient := &http.Client{Timeout: 10 * time.Second}
	var opts []connect.ClientOption
	if grpc {
		h2c := new(http.Protocols)
		h2c.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: h2c}
		t.Cleanup(tr.CloseIdleConnections)
		httpClient.Transport = tr
		opts = append(opts, connect.WithGRPC())
	}
	client := connect.NewClient[emptypb.Empty, wrapperspb.StringValue](httpClient, base+procedure, opts...)
	req := connect.NewRequest(&emptypb.Empty{})
	for _, a := range auth {
		req.Header().Add("Authorization", a)
	}
	res, err := client.CallUnary(t.Context(), req)
	if err == nil {
		return res, nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("not a *connect.Error: %v", err)
	}
	return nil, ce
}

// coreAnswer is what Guard.Handler answers a plain HTTP request with the
// Authorization values auth: the WWW-Authenticate values and Retry-After a
// connect client should be able to read.
func coreAnswer(t *testing.T, f *fixture, procedure string, auth ...string) (int, []string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.bases["plain"]+procedure, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	for _, a := range auth {
		req.Header.Add("Authorization", a)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Values("WWW-Authenticate"), res.Header.Get("Retry-After")
}

// What a connect client sees of each refusal, over a real loopback server,
// through each wiring and each protocol: the code, the message, and
// whether Error.Meta carries the challenges (exactly the core's, in order)
// and Retry-After. Behind tokenguard's plain net/http middleware, the
// Connect protocol maps the HTTP status (401 unauthenticated, 403
// permission_denied, 503 unavailable, but 400 internal: connect follows
// gRPC's HTTP-to-code table) with an empty message and the answer's header
// fields in Meta; the gRPC protocol takes the status alone ("HTTP status
// 401 Unauthorized") and shows no header field at all. Behind the
// connect-aware wiring both protocols get the code, the description and the
// header fields.
func TestErrorMapping(t *testing.T) {
	f := newFixture(t, nil)
	reader := "Bearer " + f.as.Mint(oauthtest.Claims{"sub": "alice", "scope": scopeRead})
	cases := []struct {
		name, procedure string
		auth            func() []string
		before, after   func()
		status          int
		plain, aware    connect.Code
		desc            string
	}{
		{"no token", procedureWhoAmI, func() []string { return nil }, nil, nil,
			401, connect.CodeUnauthenticated, connect.CodeUnauthenticated, "bearer token required"},
		{"expired", procedureWhoAmI, func() []string { return []string{"Bearer " + f.as.Mint(oauthtest.Claims{"exp": 1, "iat": 0})} }, nil, nil,
			401, connect.CodeUnauthenticated, connect.CodeUnauthenticated, "token expired"},
		{"missing scope", procedureCreateOrder, func() []string { return []string{reader} }, nil, nil,
			403, connect.CodePermissionDenied, connect.CodePermissionDenied, "token lacks a required scope"},
		{"two Authorization fields", procedureWhoAmI, func() []string { return []string{reader, reader} }, nil, nil,
			400, connect.CodeInternal, connect.CodeInvalidArgument, "more than one Authorization header"},
		{"authorization server down", procedureWhoAmI, func() []string { return []string{"Bearer " + f.as.MintOpaque(nil)} },
			func() { f.as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway}) },
			func() { f.as.SetFault(oauthtest.EndpointIntrospect, nil) },
			503, connect.CodeUnavailable, connect.CodeUnavailable, "authorization server unavailable, retry later"},
	}
	for _, tc := range cases {
		for _, w := range wirings {
			for _, p := range protocols {
				t.Run(tc.name+"/"+w.name+"/"+p.name, func(t *testing.T) {
					if tc.before != nil {
						tc.before()
						defer tc.after()
					}
					auth := tc.auth()
					status, challenges, retryAfter := coreAnswer(t, f, tc.procedure, auth...)
					if status != tc.status {
						t.Fatalf("the core answered %d, want %d: the test is wrong", status, tc.status)
					}
					_, ce := call(t, f.bases[w.name], tc.procedure, p.grpc, auth...)
					if ce == nil {
						t.Fatal("the call succeeded")
					}
					wantCode, wantMessage := tc.plain, ""
					wantChallenges, wantRetry := challenges, retryAfter
					switch {
					case w.aware:
						wantCode, wantMessage = tc.aware, tc.desc
					case p.grpc:
						wantMessage = "HTTP status " + strconv.Itoa(tc.status) + " " + http.StatusText(tc.status)
						wantChallenges, wantRetry = nil, ""
					}
					if ce.Code() != wantCode || ce.Message() != wantMessage {
						t.Errorf("code %v, message %q; want %v, %q", ce.Code(), ce.Message(), wantCode, wantMessage)
					}
					if got := ce.Meta().Values("WWW-Authenticate"); !reflect.DeepEqual(got, wantChallenges) {
						t.Errorf("Meta WWW-Authenticate %q, want %q", got, wantChallenges)
					}
					// The seconds to wait count down between the core's answer
					// and the call's: a positive number, or none.
					if got := ce.Meta().Get("Retry-After"); (got == "") != (wantRetry == "") || got != "" && !positive(got) {
						t.Errorf("Meta Retry-After %q, want %q", got, wantRetry)
					}
				})
			}
		}
	}
}

// Accepted calls reach the procedure with the caller in its context,
// through both wirings and both protocols; the scoped procedure takes a
// token with its scope.
func TestAccepted(t *testing.T) {
	f := newFixture(t, nil)
	writer := "Bearer " + f.as.Mint(oauthtest.Claims{"sub": "alice", "scope": scopeRead + " " + scopeWrite})
	opaque := "Bearer " + f.as.MintOpaque(oauthtest.Claims{"sub": "bob", "scope": scopeWrite})
	for _, w := range wirings {
		for _, p := range protocols {
			res, ce := call(t, f.bases[w.name], procedureWhoAmI, p.grpc, writer)
			if ce != nil || res.Msg.GetValue() != "alice" {
				t.Errorf("%s/%s WhoAmI: %v %v", w.name, p.name, res, ce)
			}
			res, ce = call(t, f.bases[w.name], procedureCreateOrder, p.grpc, opaque)
			if ce != nil || !strings.HasSuffix(res.Msg.GetValue(), " for bob") {
				t.Errorf("%s/%s CreateOrder: %v %v", w.name, p.name, res, ce)
			}
		}
	}
}

// With DPoP allowed a refusal carries two challenges (Bearer and DPoP, the
// scheme the request used first): a Connect-protocol client reads both, in
// order, through either wiring; a gRPC-protocol client only through the
// connect-aware one.
func TestDPoPChallenges(t *testing.T) {
	f := newFixture(t, func(c *tokenguard.Config) {
		c.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: "https://rpc.example"}
	})
	key := oauthtest.NewDPoPKey("ES256")
	bound := f.as.Mint(key.Bind(oauthtest.Claims{"sub": "alice"}))
	for _, auth := range [][]string{nil, {"Bearer " + bound}, {"DPoP " + bound}} {
		_, challenges, _ := coreAnswer(t, f, procedureWhoAmI, auth...)
		if len(challenges) != 2 {
			t.Fatalf("the core sent %q: the test is wrong", challenges)
		}
		for _, w := range wirings {
			for _, p := range protocols {
				_, ce := call(t, f.bases[w.name], procedureWhoAmI, p.grpc, auth...)
				want := challenges
				if p.grpc && !w.aware {
					want = nil
				}
				if ce == nil || ce.Code() != connect.CodeUnauthenticated || !reflect.DeepEqual(ce.Meta().Values("WWW-Authenticate"), want) {
					t.Errorf("%q %s/%s: %v, WWW-Authenticate %q, want %q", auth, w.name, p.name, ce, ce.Meta().Values("WWW-Authenticate"), want)
				}
			}
		}
	}
}

// A request that is no RPC (a browser, curl) gets the RFC 6750 answer from
// the connect-aware wiring too.
func TestNotAnRPC(t *testing.T) {
	f := newFixture(t, nil)
	res, err := http.Post(f.bases["connect-aware"]+procedureWhoAmI, "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") == "" || strings.TrimSpace(string(body)) != `{"error_description":"bearer token required"}` {
		t.Errorf("%d %q %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
	}
}

func positive(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0
}
