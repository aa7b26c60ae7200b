package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Credentials of the embedded authorization server's two clients.
const (
	demoClient, demoSecret = "demo-client", "demo-secret"      // calls the API
	apiClient, apiSecret   = "orders-api", "orders-api-secret" // the API itself, for introspection
	opaqueSubject          = "carol"                           // owner of the opaque token
)

// check is one call of the self-check and the answer tokenguard must give.
type check struct {
	name          string
	method        string   // full method name
	auth          []string // authorization values
	wantCode      codes.Code
	wantChallenge string // substring of www-authenticate; "" means none may be sent
	wantReply     string // for OK: the (first) reply, which names the caller
}

// selfCheck starts an embedded authorization server and the API's gRPC
// server (built by build), both on loopback, calls the API as a client
// would and prints each outcome.
func selfCheck(ctx context.Context, build func(*tokenguard.Guard) *grpc.Server, stdout, stderr io.Writer) int {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient(demoClient, demoSecret, ScopeRead, ScopeWrite)
	as.RegisterClient(apiClient, apiSecret) // may introspect, gets no tokens for the API
	fmt.Fprintf(stdout, "authorization server  %s (embedded)\n", as.Issuer)

	// The same discovery a real deployment runs: RFC 9728, then RFC 8414.
	g, err := tokenguard.New(ctx, tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true, // the embedded server speaks plain HTTP on loopback
		Introspection:       tokenguard.IntrospectionConfig{ClientID: apiClient, ClientSecret: apiSecret},
	})
	if err != nil {
		fmt.Fprintf(stderr, "grpc: %v\n", err)
		return exitFail
	}
	defer g.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "grpc: %v\n", err)
		return exitFail
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- serve(serveCtx, ln, build(g)) }()
	defer func() {
		stopServing()
		<-served
	}()
	fmt.Fprintf(stdout, "%-21s %s (resource %s)\n\n", "gRPC server", ln.Addr(), g.Resource())

	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "grpc: %v\n", err)
		return exitFail
	}
	defer conn.Close()

	client := &http.Client{Timeout: 10 * time.Second}
	reader, err := clientCredentials(ctx, client, as.TokenURL(), ScopeRead)
	if err != nil {
		fmt.Fprintf(stderr, "grpc: token request: %v\n", err)
		return exitFail
	}
	writer, err := clientCredentials(ctx, client, as.TokenURL(), ScopeRead+" "+ScopeWrite)
	if err != nil {
		fmt.Fprintf(stderr, "grpc: token request: %v\n", err)
		return exitFail
	}
	opaque := as.MintOpaque(oauthtest.Claims{"sub": opaqueSubject, "scope": ScopeRead})
	bearer := func(tok string) []string { return []string{"Bearer " + tok} }

	checks := []check{
		{name: "public", method: healthpb.Health_Check_FullMethodName, wantCode: codes.OK},
		{name: "valid token", method: MethodListOrders, auth: bearer(reader), wantCode: codes.OK, wantReply: demoClient + ": "},
		{name: "no token", method: MethodListOrders, wantCode: codes.Unauthenticated, wantChallenge: `resource_metadata="`},
		{name: "missing scope", method: MethodCreateOrder, auth: bearer(reader), wantCode: codes.PermissionDenied, wantChallenge: `error="insufficient_scope"`},
		{name: "write scope", method: MethodCreateOrder, auth: bearer(writer), wantCode: codes.OK, wantReply: "order 1 for " + demoClient},
		{name: "opaque token", method: MethodListOrders, auth: bearer(opaque), wantCode: codes.OK, wantReply: opaqueSubject + ": "},
		{name: "two tokens", method: MethodListOrders, auth: []string{"Bearer " + reader, "Bearer " + writer}, wantCode: codes.InvalidArgument, wantChallenge: `error="invalid_request"`},
		{name: "stream, token", method: MethodWatchOrders, auth: bearer(reader), wantCode: codes.OK, wantReply: demoClient},
		{name: "stream, none", method: MethodWatchOrders, wantCode: codes.Unauthenticated, wantChallenge: `resource_metadata="`},
	}
	failed := 0
	for _, c := range checks {
		code, challenge, verdict := c.run(ctx, conn)
		if verdict != "ok" {
			failed++
		}
		fmt.Fprintf(stdout, "%-13s %-32s -> %-16s %s\n", c.name, strings.TrimPrefix(c.method, "/"), code, verdict)
		if challenge != "" {
			fmt.Fprintf(stdout, "%13s www-authenticate: %s\n", "", challenge)
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "\n%d of %d outcomes were wrong\n", failed, len(checks))
		return exitFail
	}
	fmt.Fprintf(stdout, "\nall %d outcomes as expected\n", len(checks))
	return exitOK
}

// run makes the call and returns its code, the www-authenticate metadata
// (the header of a unary call, the trailer of a stream) and "ok" or what
// was wrong.
func (c check) run(ctx context.Context, conn *grpc.ClientConn) (codes.Code, string, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if len(c.auth) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, metadata.MD{"authorization": c.auth})
	}
	var (
		md    metadata.MD
		reply string
		err   error
	)
	switch c.method {
	case healthpb.Health_Check_FullMethodName:
		var res *healthpb.HealthCheckResponse
		res, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
		if err == nil && res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return codes.OK, "", "FAIL: not SERVING"
		}
	case MethodWatchOrders:
		reply, md, err = watch(ctx, conn)
	default:
		out := new(wrapperspb.StringValue)
		err = conn.Invoke(ctx, c.method, &emptypb.Empty{}, out, grpc.Header(&md))
		reply = out.GetValue()
	}
	code := status.Code(err)
	challenge := strings.Join(md.Get("www-authenticate"), "; ")
	switch {
	case code != c.wantCode:
		return code, challenge, fmt.Sprintf("FAIL: want %v (%v)", c.wantCode, err)
	case c.wantChallenge == "" && challenge != "":
		return code, challenge, "FAIL: unexpected www-authenticate"
	case !strings.Contains(challenge, c.wantChallenge):
		return code, challenge, fmt.Sprintf("FAIL: want www-authenticate containing %s", c.wantChallenge)
	case code == codes.OK && !strings.HasPrefix(reply, c.wantReply):
		return code, challenge, fmt.Sprintf("FAIL: handler answered %q, want %q", reply, c.wantReply)
	}
	return code, challenge, "ok"
}

// watch reads the first message of a WatchOrders stream, or the error it
// ends with, and returns its trailer.
func watch(ctx context.Context, conn *grpc.ClientConn) (string, metadata.MD, error) {
	cs, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: "WatchOrders", ServerStreams: true}, MethodWatchOrders)
	if err != nil {
		return "", nil, err
	}
	if err := cs.SendMsg(&emptypb.Empty{}); err != nil {
		return "", nil, err
	}
	if err := cs.CloseSend(); err != nil {
		return "", nil, err
	}
	first := new(wrapperspb.StringValue)
	if err := cs.RecvMsg(first); err != nil {
		return "", cs.Trailer(), err
	}
	for {
		if err := cs.RecvMsg(new(wrapperspb.StringValue)); errors.Is(err, io.EOF) {
			return first.GetValue(), cs.Trailer(), nil
		} else if err != nil {
			return "", cs.Trailer(), err
		}
	}
}

// clientCredentials gets a token for scope from the embedded server the way
// a client does (RFC 6749 §4.4).
func clientCredentials(ctx context.Context, client *http.Client, tokenURL, scope string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	req, err := http.NewRequestWithContext(ctx, "POST", tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(url.QueryEscape(demoClient), url.QueryEscape(demoSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return "", fmt.Errorf("status %d, error %q", resp.StatusCode, body.Error)
	}
	return body.AccessToken, nil
}
