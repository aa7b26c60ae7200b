// Command mcpserver is a Model Context Protocol server over streamable HTTP,
// built with the official MCP Go SDK and protected by tokenguard through
// the tgmcp adapter (github.com/tokenguard/tokenguard/adapters/mcp). It
// has two endpoints, each an MCP server and a protected resource of its
// own:
//
//	/mcp         tool whoami       any valid token for <base>/mcp
//	/mcp/orders  tool list_orders  a token for <base>/mcp/orders with scope orders:read
//
// and serves each one's RFC 9728 metadata where its challenges point:
// /.well-known/oauth-protected-resource/mcp and
// /.well-known/oauth-protected-resource/mcp/orders. A request without a
// valid token gets 401 with resource_metadata; a token without
// orders:read gets 403 insufficient_scope on /mcp/orders, so an MCP
// client can step up.
//
//	go -C examples/mcpserver run .          # embedded authorization server; self-check with the SDK's client
//	go -C examples/mcpserver run . -serve   # embedded authorization server; serve and print tokens to try
//	go -C examples/mcpserver run . -issuer https://as.example.com -public-url https://mcp.example.com -addr :8080
//
// Without flags it starts an in-process authorization server (oauthtest)
// and the MCP server on loopback, drives the server with the SDK's own
// client (no token, a token, a token missing the scope, a token with it,
// a token for the other endpoint), prints each outcome and exits 0 when
// every one is right, 1 otherwise.
//
// With -issuer it trusts that authorization server instead (RFC 8414 or
// OpenID discovery from the issuer) and serves until interrupted. The
// server publishes its own RFC 9728 documents, so the issuer, not a
// metadata URL, is what it is given; -public-url is the scheme and host
// clients reach it at, from which the resource identifiers are made. The
// environment variables TOKENGUARD_ISSUER and TOKENGUARD_PUBLIC_URL stand
// for the flags; TOKENGUARD_CLIENT_ID and TOKENGUARD_CLIENT_SECRET, when
// set, are the server's own credentials for introspecting opaque tokens.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tokenguard/tokenguard"
)

// Environment variables read by run; a flag, when given, wins.
const (
	// EnvIssuer is the issuer of the authorization server to trust (like -issuer).
	EnvIssuer = "TOKENGUARD_ISSUER"
	// EnvPublicURL is the scheme and host clients reach this server at (like -public-url).
	EnvPublicURL = "TOKENGUARD_PUBLIC_URL"
	// EnvClientID and EnvClientSecret are this server's own credentials at
	// the authorization server, used to introspect opaque tokens.
	EnvClientID     = "TOKENGUARD_CLIENT_ID"
	EnvClientSecret = "TOKENGUARD_CLIENT_SECRET"
)

// defaultAddr is where -serve and -issuer listen unless -addr says otherwise.
const defaultAddr = "127.0.0.1:8080"

// Exit codes of run.
const (
	exitOK    = 0 // self-check passed, or served until interrupted
	exitFail  = 1 // a wrong outcome, or start-up failed
	exitUsage = 2 // bad flags or environment
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	serve        bool
	issuer       string
	publicURL    string
	addr         string
	insecureHTTP bool
	clientID     string
	clientSecret string
}

// run is the whole program: args are its flags, getenv its environment.
// It returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, code, ok := parse(args, getenv, stderr)
	if !ok {
		return code
	}
	switch {
	case o.issuer != "":
		return serveIssuer(ctx, o, stdout, stderr)
	case o.serve:
		return serveEmbedded(ctx, o.addr, stdout, stderr)
	default:
		return selfCheck(ctx, stdout, stderr)
	}
}

// parse reads flags and environment. It returns ok false with the exit
// code when the program should stop (usage error, or -h).
func parse(args []string, getenv func(string) string, stderr io.Writer) (options, int, bool) {
	var o options
	fs := flag.NewFlagSet("mcpserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.serve, "serve", false, "with the embedded authorization server, serve until interrupted instead of running the self-check")
	fs.StringVar(&o.issuer, "issuer", "", "trust the authorization server with this issuer `URL` instead of the embedded one, and serve (env "+EnvIssuer+")")
	fs.StringVar(&o.publicURL, "public-url", "", "with -issuer: the scheme and host clients reach this server at, such as https://mcp.example.com;\nthe resources are its /mcp and /mcp/orders (default http://<addr>) (env "+EnvPublicURL+")")
	fs.StringVar(&o.addr, "addr", defaultAddr, "listen `address` with -serve or -issuer")
	fs.BoolVar(&o.insecureHTTP, "insecure-http", false, "with -issuer: allow http:// discovery and key URLs (a development server on loopback only)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: mcpserver [flags]

An MCP server (streamable HTTP) protected by tokenguard:
  /mcp         tool whoami       any valid token
  /mcp/orders  tool list_orders  needs scope %s
each with its RFC 9728 metadata under /.well-known/oauth-protected-resource.

Without flags it starts an embedded authorization server, checks the server
with the MCP SDK's own client, prints each outcome and exits 0 when every one
is right (1 otherwise).

Environment:
  %-26s like -issuer
  %-26s like -public-url
  %-26s this server's client id, to introspect opaque tokens
  %-26s its client secret

Flags:
`, ScopeOrdersRead, EnvIssuer, EnvPublicURL, EnvClientID, EnvClientSecret)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitOK, false
		}
		return o, exitUsage, false
	}
	usage := func(format string, a ...any) (options, int, bool) {
		fmt.Fprintf(stderr, "mcpserver: "+format+"\n", a...)
		return o, exitUsage, false
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["issuer"] {
		o.issuer = getenv(EnvIssuer)
	}
	if !set["public-url"] {
		o.publicURL = getenv(EnvPublicURL)
	}
	o.clientID, o.clientSecret = getenv(EnvClientID), getenv(EnvClientSecret)

	if o.issuer == "" {
		for _, name := range []string{"public-url", "insecure-http"} {
			if set[name] || (name == "public-url" && o.publicURL != "") {
				return usage("-%s applies only with -issuer (or %s)", name, EnvIssuer)
			}
		}
		if set["addr"] && !o.serve {
			return usage("-addr applies only with -serve or -issuer")
		}
		if o.clientID != "" {
			return usage("%s applies only with -issuer (or %s)", EnvClientID, EnvIssuer)
		}
	} else if o.serve {
		return usage("-serve runs the embedded authorization server; it does not go with -issuer")
	}
	if o.publicURL != "" {
		base, err := baseURL(o.publicURL)
		if err != nil {
			return usage("-public-url: %v", err)
		}
		o.publicURL = base
	}
	if o.clientSecret != "" && o.clientID == "" {
		return usage("%s is set but %s is not", EnvClientSecret, EnvClientID)
	}
	return o, exitOK, true
}

// baseURL checks that s is an absolute http(s) URL with no path, query or
// fragment, and returns it without a trailing slash.
func baseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not a scheme and host such as https://mcp.example.com", s)
	}
	return u.Scheme + "://" + u.Host, nil
}

// serveIssuer serves with a real authorization server until ctx ends.
func serveIssuer(ctx context.Context, o options, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		fmt.Fprintf(stderr, "mcpserver: %v\n", err)
		return exitFail
	}
	defer ln.Close()
	base := o.publicURL
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	cfg := tokenguard.Config{
		Issuer:            o.issuer,
		InsecureAllowHTTP: o.insecureHTTP,
		Logger:            slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if o.clientID != "" {
		cfg.Introspection = tokenguard.IntrospectionConfig{ClientID: o.clientID, ClientSecret: o.clientSecret}
	}
	a, err := newApp(ctx, cfg, base)
	if err != nil {
		fmt.Fprintf(stderr, "mcpserver: %v\n", err)
		return exitFail
	}
	defer a.Close()
	fmt.Fprintf(stdout, "issuer %s\n", o.issuer)
	printEndpoints(stdout, a)
	fmt.Fprintf(stdout, "listening on %s (Ctrl-C stops)\n", ln.Addr())
	if err := serve(ctx, ln, a.handler); err != nil {
		fmt.Fprintf(stderr, "mcpserver: %v\n", err)
		return exitFail
	}
	return exitOK
}

// printEndpoints lists each endpoint with its resource metadata URL.
func printEndpoints(w io.Writer, a *app) {
	fmt.Fprintf(w, "MCP endpoint %-40s whoami       metadata %s\n", a.general.Resource(), a.general.ResourceMetadataURL())
	fmt.Fprintf(w, "MCP endpoint %-40s list_orders  metadata %s (needs %s)\n", a.orders.Resource(), a.orders.ResourceMetadataURL(), ScopeOrdersRead)
}

// serve serves h on ln until ctx ends, then shuts down gracefully (at
// most 5 seconds for requests in flight; open SSE streams are cut). It
// returns nil after a shutdown that ctx asked for.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close()
	}
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}
