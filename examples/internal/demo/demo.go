// Package demo is what the framework examples share: flag and environment
// parsing, the embedded authorization server with its self-check, and
// serving until interrupted. Each example supplies only its routes, written
// the way that framework is used, over the same in-memory order store.
package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tokenguard/tokenguard"
)

// Environment variables read by Run; a flag, when given, wins.
const (
	// EnvResourceMetadataURL is the RFC 9728 metadata URL (like -discovery).
	EnvResourceMetadataURL = "TOKENGUARD_RESOURCE_METADATA_URL"
	// EnvClientID and EnvClientSecret are this API's own credentials at the
	// authorization server, used to introspect opaque tokens.
	EnvClientID     = "TOKENGUARD_CLIENT_ID"
	EnvClientSecret = "TOKENGUARD_CLIENT_SECRET"
)

// DefaultAddr is where -discovery mode serves unless -addr says otherwise.
const DefaultAddr = "127.0.0.1:8080"

// The demo API's scopes: any valid token reads, creating needs ScopeWrite.
const (
	ScopeRead  = "orders:read"
	ScopeWrite = "orders:write"
)

// Routes builds an example's API: public GET /healthz, GET /orders for any
// valid token, POST /orders only with ScopeWrite, all over orders.
type Routes func(g *tokenguard.Guard, orders *Orders) http.Handler

// Program is one example: its name (for usage text) and its routes.
type Program struct {
	Name   string
	Routes Routes
}

// Main runs p with the process's arguments and environment, stops on
// SIGINT or SIGTERM, and exits with Run's code.
func Main(p Program) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Run(ctx, p, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes of Run.
const (
	ExitOK    = 0 // self-check passed, or served until interrupted
	ExitFail  = 1 // a wrong outcome, or start-up failed
	ExitUsage = 2 // bad flags or environment
)

type options struct {
	discovery    string
	addr         string
	clientID     string
	clientSecret string
	insecureHTTP bool
}

// parse reads flags and environment. It returns ok false with the exit
// code when the program should stop (usage error, or -h).
func parse(p Program, args []string, getenv func(string) string, stderr io.Writer) (options, int, bool) {
	var o options
	fs := flag.NewFlagSet(p.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.discovery, "discovery", "", "the API's RFC 9728 protected-resource metadata `URL`: build the guard from it and\nserve on -addr instead of running the embedded self-check (env "+EnvResourceMetadataURL+")")
	fs.StringVar(&o.addr, "addr", DefaultAddr, "listen `address` in -discovery mode")
	fs.BoolVar(&o.insecureHTTP, "insecure-http", false, "allow http:// discovery and key URLs (a development server on loopback only)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: %[1]s [flags]

An orders API protected by tokenguard: GET /healthz (public), GET /orders
(any valid token), POST /orders (needs scope %[2]s).

Without -discovery it starts an embedded authorization server (oauthtest),
calls the API with good and bad tokens, prints each outcome and exits 0 when
every one is right (1 otherwise). With -discovery it serves on -addr until
interrupted.

Environment:
  %[3]s  like -discovery
  %[4]s              this API's client id, to introspect opaque tokens
  %[5]s          its client secret

Flags:
`, p.Name, ScopeWrite, EnvResourceMetadataURL, EnvClientID, EnvClientSecret)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, ExitOK, false
		}
		return o, ExitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", p.Name, fs.Args())
		fs.Usage()
		return o, ExitUsage, false
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
				fmt.Fprintf(stderr, "%s: -%s applies only with -discovery (or %s)\n", p.Name, name, EnvResourceMetadataURL)
				return o, ExitUsage, false
			}
		}
	}
	if o.discovery != "" && o.clientSecret != "" && o.clientID == "" {
		fmt.Fprintf(stderr, "%s: %s is set but %s is not\n", p.Name, EnvClientSecret, EnvClientID)
		return o, ExitUsage, false
	}
	return o, ExitOK, true
}

// Run is an example's whole program: args are its flags, getenv its
// environment. It returns the exit code.
func Run(ctx context.Context, p Program, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, code, ok := parse(p, args, getenv, stderr)
	if !ok {
		return code
	}
	if o.discovery == "" {
		return selfCheck(ctx, p, stdout, stderr)
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	cfg := tokenguard.Config{
		ResourceMetadataURL: o.discovery,
		InsecureAllowHTTP:   o.insecureHTTP,
		Logger:              logger,
	}
	if o.clientID != "" {
		cfg.Introspection = tokenguard.IntrospectionConfig{ClientID: o.clientID, ClientSecret: o.clientSecret}
	}
	g, err := tokenguard.New(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return ExitFail
	}
	defer g.Close()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return ExitFail
	}
	fmt.Fprintf(stdout, "resource %s, issuers %v, introspection %s\n", g.Resource(), g.Issuers(), onOff(o.clientID != ""))
	fmt.Fprintf(stdout, "serving on http://%s (Ctrl-C stops)\n", ln.Addr())
	if err := Serve(ctx, ln, p.Routes(g, &Orders{})); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return ExitFail
	}
	return ExitOK
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// Serve serves h on ln until ctx ends, then shuts down gracefully (at most
// 5 seconds for requests in flight). It returns nil after a shutdown that
// ctx asked for.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
	}
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
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	return err
}
