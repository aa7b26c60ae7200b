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

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Credentials of the embedded authorization server's clients.
const (
	demoClient, demoSecret = "demo-client", "demo-secret"      // calls the service
	apiClient, apiSecret   = "orders-api", "orders-api-secret" // the service itself, for introspection
)

// wiring is one way of putting the Guard in front of the service.
type wiring struct {
	name  string
	build func(*tokenguard.Guard) http.Handler
	aware bool // refusals in the client's protocol (connectAware)
}

var wirings = []wiring{
	{"plain", plain, false},
	{"connect-aware", connectAware, true},
}

// protocol is one way a connect client talks to the service.
type protocol struct {
	name string
	grpc bool
}

var protocols = []protocol{{"connect", false}, {"grpc", true}}

// check is one call and what a client must see.
type check struct {
	name, procedure string
	auth            func() []string // the Authorization values to send
	before, after   func()          // arrange the authorization server, and restore it
	code            connect.Code    // 0: the call succeeds
	caller          string          // on success, the caller the service saw
	meta            string          // a field the error's Meta carries: WWW-Authenticate or Retry-After
}

// expect is what a client of p sees for c behind w: the truth about
// connect's clients, described in README.md. Behind the plain wiring a
// refusal is a bare HTTP status: a client infers internal from 400, and a
// gRPC-protocol client, which reads nothing of an answer that is not HTTP
// 200, sees no metadata.
func (c check) expect(w wiring, p protocol) (code connect.Code, meta string) {
	code, meta = c.code, c.meta
	if !w.aware {
		if code == connect.CodeInvalidArgument {
			code = connect.CodeInternal
		}
		if p.grpc {
			meta = ""
		}
	}
	return code, meta
}

// selfCheck serves both wirings next to an embedded authorization server,
// all on loopback, and calls them with both protocols.
func selfCheck(ctx context.Context, stdout, stderr io.Writer) int {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient(demoClient, demoSecret, scopeRead, scopeWrite)
	as.RegisterClient(apiClient, apiSecret)
	fmt.Fprintf(stdout, "authorization server  %s (embedded)\n", as.Issuer)

	g, err := tokenguard.New(ctx, tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true, // the embedded server speaks plain HTTP on loopback
		Introspection:       tokenguard.IntrospectionConfig{ClientID: apiClient, ClientSecret: apiSecret},
	})
	if err != nil {
		fmt.Fprintf(stderr, "connect: %v\n", err)
		return exitFail
	}
	defer g.Close()

	plainClient := &http.Client{Timeout: 10 * time.Second} // HTTP/1.1, enough for the Connect protocol
	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	grpcClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2c}} // gRPC needs HTTP/2

	reader, err := clientCredentials(ctx, plainClient, as.TokenURL(), scopeRead)
	if err != nil {
		fmt.Fprintf(stderr, "connect: token request: %v\n", err)
		return exitFail
	}
	writer, err := clientCredentials(ctx, plainClient, as.TokenURL(), scopeRead+" "+scopeWrite)
	if err != nil {
		fmt.Fprintf(stderr, "connect: token request: %v\n", err)
		return exitFail
	}
	bearer := func(tok string) func() []string { return func() []string { return []string{"Bearer " + tok} } }
	checks := []check{
		{name: "valid token", procedure: procedureWhoAmI, auth: bearer(reader), caller: demoClient},
		{name: "no token", procedure: procedureWhoAmI, auth: func() []string { return nil },
			code: connect.CodeUnauthenticated, meta: "WWW-Authenticate"},
		{name: "missing scope", procedure: procedureCreateOrder, auth: bearer(reader),
			code: connect.CodePermissionDenied, meta: "WWW-Authenticate"},
		{name: "write scope", procedure: procedureCreateOrder, auth: bearer(writer), caller: demoClient},
		{name: "two tokens", procedure: procedureWhoAmI, auth: func() []string { return []string{"Bearer " + reader, "Bearer " + writer} },
			code: connect.CodeInvalidArgument, meta: "WWW-Authenticate"},
		{name: "AS down", procedure: procedureWhoAmI, auth: func() []string { return []string{"Bearer " + as.MintOpaque(nil)} },
			before: func() { as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway}) },
			after:  func() { as.SetFault(oauthtest.EndpointIntrospect, nil) },
			code:   connect.CodeUnavailable, meta: "Retry-After"},
	}

	total, failed := 0, 0
	for _, w := range wirings {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintf(stderr, "connect: %v\n", err)
			return exitFail
		}
		serveCtx, stopServing := context.WithCancel(ctx)
		served := make(chan error, 1)
		go func() { served <- serve(serveCtx, ln, w.build(g)) }()
		base := "http://" + ln.Addr().String()
		fmt.Fprintf(stdout, "\n%s wiring, %s\n", w.name, base)
		for _, p := range protocols {
			client, opts := plainClient, []connect.ClientOption(nil)
			if p.grpc {
				client, opts = grpcClient, []connect.ClientOption{connect.WithGRPC()}
			}
			for _, c := range checks {
				total++
				got, meta, verdict := c.run(ctx, client, base, opts, w, p)
				if verdict != "ok" {
					failed++
				}
				fmt.Fprintf(stdout, "  %-7s %-13s %-11s -> %-17s %s\n", p.name, c.name, c.procedure[strings.LastIndexByte(c.procedure, '/')+1:], got, verdict)
				if meta != "" {
					fmt.Fprintf(stdout, "  %37s %s\n", "", meta)
				}
			}
		}
		stopServing()
		if err := <-served; err != nil {
			fmt.Fprintf(stderr, "connect: %v\n", err)
			return exitFail
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "\n%d of %d outcomes were wrong\n", failed, total)
		return exitFail
	}
	fmt.Fprintf(stdout, "\nall %d outcomes as expected\n", total)
	return exitOK
}

// run makes the call of c to the service at base and returns what the
// client got (ok or the code), the metadata line to show, and "ok" or what
// was wrong.
func (c check) run(ctx context.Context, httpClient *http.Client, base string, opts []connect.ClientOption, w wiring, p protocol) (string, string, string) {
	if c.before != nil {
		c.before()
	}
	if c.after != nil {
		defer c.after()
	}
	client := connect.NewClient[emptypb.Empty, wrapperspb.StringValue](httpClient, base+c.procedure, opts...)
	req := connect.NewRequest(&emptypb.Empty{})
	for _, v := range c.auth() {
		req.Header().Add("Authorization", v)
	}
	res, err := client.CallUnary(ctx, req)
	wantCode, wantMeta := c.expect(w, p)
	if err == nil {
		switch {
		case wantCode != 0:
			return "ok", "", "FAIL: want " + wantCode.String()
		case !strings.Contains(res.Msg.GetValue(), c.caller):
			return "ok", "", fmt.Sprintf("FAIL: the service saw %q, want %q", res.Msg.GetValue(), c.caller)
		}
		return "ok", "", "ok"
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return "error", "", "FAIL: " + err.Error()
	}
	code := ce.Code()
	shown := ""
	for _, k := range []string{"WWW-Authenticate", "Retry-After"} {
		for _, v := range ce.Meta().Values(k) {
			shown += k + ": " + v + " "
		}
	}
	if shown == "" {
		shown = "(no WWW-Authenticate, no Retry-After in Meta)"
	}
	switch {
	case code != wantCode:
		return code.String(), shown, "FAIL: want " + codeName(wantCode)
	case wantMeta != "" && ce.Meta().Get(wantMeta) == "":
		return code.String(), shown, "FAIL: want " + wantMeta + " in Meta"
	case wantMeta == "" && (ce.Meta().Get("WWW-Authenticate") != "" || ce.Meta().Get("Retry-After") != ""):
		return code.String(), shown, "FAIL: Meta carries what this client was not expected to see"
	}
	return code.String(), strings.TrimSpace(shown), "ok"
}

func codeName(c connect.Code) string {
	if c == 0 {
		return "ok"
	}
	return c.String()
}

// clientCredentials gets a token for scope the way a client does (RFC 6749
// §4.4).
func clientCredentials(ctx context.Context, client *http.Client, tokenURL, scope string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(url.QueryEscape(demoClient), url.QueryEscape(demoSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&body); err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK || body.AccessToken == "" {
		return "", fmt.Errorf("status %d, error %q", res.StatusCode, body.Error)
	}
	return body.AccessToken, nil
}
