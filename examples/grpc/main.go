// Command grpc is the orders API as a gRPC service, protected by
// tokenguard through the tggrpc interceptors
// (github.com/tokenguard/tokenguard/adapters/grpc):
//
//	/orders.v1.Orders/ListOrders     any valid token
//	/orders.v1.Orders/CreateOrder    a token with scope orders:write
//	/orders.v1.Orders/WatchOrders    any valid token (a server stream)
//	/grpc.health.v1.Health/Check     public, for load balancers (and Watch)
//
//	go -C examples/grpc run .                 # embedded authorization server + self-check
//	go -C examples/grpc run . -discovery URL  # a real one (RFC 9728 metadata URL)
//
// Without flags it starts an in-process authorization server (oauthtest)
// and the gRPC server on a free loopback port, calls the server as a gRPC
// client would (no token, a token, a token without the write scope, one
// with it, an opaque token, two authorization values, the stream with and
// without a token), prints each outcome with the code and the
// www-authenticate metadata, and exits 0 when every one is right, 1
// otherwise.
//
// With -discovery it builds the Guard from that RFC 9728 protected-resource
// metadata (then RFC 8414 for each authorization server it names) and
// serves plaintext gRPC on -addr until interrupted: put it behind a
// TLS-terminating proxy, or add grpc.Creds, for anything but loopback. The
// environment variable TOKENGUARD_RESOURCE_METADATA_URL stands for the
// flag; TOKENGUARD_CLIENT_ID and TOKENGUARD_CLIENT_SECRET, when set, are
// the API's own credentials for introspecting opaque tokens.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/tokenguard/tokenguard"
)

// Environment variables read by run; a flag, when given, wins.
const (
	// EnvResourceMetadataURL is the RFC 9728 metadata URL (like -discovery).
	EnvResourceMetadataURL = "TOKENGUARD_RESOURCE_METADATA_URL"
	// EnvClientID and EnvClientSecret are this API's own credentials at the
	// authorization server, used to introspect opaque tokens.
	EnvClientID     = "TOKENGUARD_CLIENT_ID"
	EnvClientSecret = "TOKENGUARD_CLIENT_SECRET"
)

// defaultAddr is where -discovery mode serves unless -addr says otherwise.
const defaultAddr = "127.0.0.1:50051"

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
	discovery    string
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
	if o.discovery == "" {
		return selfCheck(ctx, newServer, stdout, stderr)
	}
	return serveDiscovery(ctx, o, stdout, stderr)
}

// parse reads flags and environment. It returns ok false with the exit
// code when the program should stop (usage error, or -h).
func parse(args []string, getenv func(string) string, stderr io.Writer) (options, int, bool) {
	var o options
	fs := flag.NewFlagSet("grpc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.discovery, "discovery", "", "the API's RFC 9728 protected-resource metadata `URL`: build the guard from it and\nserve on -addr instead of running the embedded self-check (env "+EnvResourceMetadataURL+")")
	fs.StringVar(&o.addr, "addr", defaultAddr, "listen `address` in -discovery mode")
	fs.BoolVar(&o.insecureHTTP, "insecure-http", false, "allow http:// discovery and key URLs (a development server on loopback only)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: grpc [flags]

The orders API as a gRPC service protected by tokenguard:
  %-34s any valid token
  %-34s needs scope %s
  %-34s any valid token (server stream)
  %-34s public

Without -discovery it starts an embedded authorization server (oauthtest),
calls the service with good and bad tokens, prints each outcome and exits 0
when every one is right (1 otherwise). With -discovery it serves on -addr
until interrupted.

Environment:
  %-34s like -discovery
  %-34s this API's client id, to introspect opaque tokens
  %-34s its client secret

Flags:
`, MethodListOrders, MethodCreateOrder, ScopeWrite, MethodWatchOrders, "/grpc.health.v1.Health/Check, Watch",
			EnvResourceMetadataURL, EnvClientID, EnvClientSecret)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, exitOK, false
		}
		return o, exitUsage, false
	}
	usage := func(format string, a ...any) (options, int, bool) {
		fmt.Fprintf(stderr, "grpc: "+format+"\n", a...)
		return o, exitUsage, false
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["discovery"] {
		o.discovery = getenv(EnvResourceMetadataURL)
	}
	o.clientID, o.clientSecret = getenv(EnvClientID), getenv(EnvClientSecret)
	if o.discovery == "" {
		for _, name := range []string{"addr", "insecure-http"} {
			if set[name] {
				return usage("-%s applies only with -discovery (or %s)", name, EnvResourceMetadataURL)
			}
		}
	}
	if o.clientSecret != "" && o.clientID == "" {
		return usage("%s is set but %s is not", EnvClientSecret, EnvClientID)
	}
	return o, exitOK, true
}

// serveDiscovery builds the Guard from the metadata URL and serves until
// ctx ends.
func serveDiscovery(ctx context.Context, o options, stdout, stderr io.Writer) int {
	cfg := tokenguard.Config{
		ResourceMetadataURL: o.discovery,
		InsecureAllowHTTP:   o.insecureHTTP,
		Logger:              slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if o.clientID != "" {
		cfg.Introspection = tokenguard.IntrospectionConfig{ClientID: o.clientID, ClientSecret: o.clientSecret}
	}
	g, err := tokenguard.New(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "grpc: %v\n", err)
		return exitFail
	}
	defer g.Close()
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		fmt.Fprintf(stderr, "grpc: %v\n", err)
		return exitFail
	}
	introspection := "off"
	if o.clientID != "" {
		introspection = "on"
	}
	fmt.Fprintf(stdout, "resource %s, issuers %v, introspection %s\n", g.Resource(), g.Issuers(), introspection)
	fmt.Fprintf(stdout, "serving gRPC on %s (Ctrl-C stops)\n", ln.Addr())
	if err := serve(ctx, ln, newServer(g)); err != nil {
		fmt.Fprintf(stderr, "grpc: %v\n", err)
		return exitFail
	}
	return exitOK
}

// serve serves srv on ln until ctx ends, then stops gracefully (at most 5
// seconds for calls in flight). It returns
// nil after a stop that ctx asked for.
func serve(ctx context.Context, ln net.Listener, srv *grpc.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second): // calls still in flight: end them
		srv.Stop()
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}
