// Command connect serves a Connect RPC service (connectrpc.com/connect)
// behind tokenguard and shows what a connect client sees when a call is
// refused, over the Connect protocol and over the gRPC protocol
// (connect.WithGRPC), for two wirings of the same Guard:
//
//   - plain: tokenguard's own net/http middleware, g.Handler around the mux
//     and g.RequireScopes on the scoped procedure's path, as for any
//     net/http handler. A Connect-protocol client gets the code for the
//     HTTP status and the WWW-Authenticate challenge in Error.Meta; a
//     gRPC-protocol client gets the code alone.
//   - connect-aware: the same decisions (g.Check with per-procedure
//     requirements), with refusals written by connect's ErrorWriter in the
//     client's protocol, so that both kinds of client get the right code
//     and the challenge.
//
// By default it starts an oauthtest authorization server on loopback,
// serves both wirings on loopback (HTTP/1.1 and h2c, as gRPC needs HTTP/2),
// calls every procedure with good and bad tokens through both protocols,
// prints what the client saw and exits 0 when every outcome is as
// README.md describes, 1 otherwise. With -discovery it serves the
// connect-aware wiring on -addr until interrupted.
//
//	go -C examples/connect run .
//	go -C examples/connect run . -discovery https://api.example.com/.well-known/oauth-protected-resource
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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tokenguard/tokenguard"
)

// Environment variables; the -discovery flag, when given, wins.
const (
	envDiscovery    = "TOKENGUARD_RESOURCE_METADATA_URL"
	envClientID     = "TOKENGUARD_CLIENT_ID"
	envClientSecret = "TOKENGUARD_CLIENT_SECRET"
)

// Exit codes.
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

// run is the whole program: args are its flags, getenv its environment. It
// returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	discovery := fs.String("discovery", "", "the API's RFC 9728 protected-resource metadata `URL`: serve on -addr instead of\nrunning the embedded self-check (env "+envDiscovery+")")
	addr := fs.String("addr", "127.0.0.1:8080", "listen `address` in -discovery mode")
	insecureHTTP := fs.Bool("insecure-http", false, "allow http:// discovery and key URLs (a development server on loopback only)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: connect [flags]\n\nA Connect RPC service protected by tokenguard. Without -discovery it runs a\nself-check against an embedded authorization server.\n\nEnvironment: %s, %s (turns on\nintrospection), %s.\n\nFlags:\n", envDiscovery, envClientID, envClientSecret)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "connect: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["discovery"] {
		*discovery = getenv(envDiscovery)
	}
	if *discovery == "" {
		if set["addr"] || set["insecure-http"] {
			fmt.Fprintf(stderr, "connect: -addr and -insecure-http apply only with -discovery (or %s)\n", envDiscovery)
			return exitUsage
		}
		return selfCheck(ctx, stdout, stderr)
	}

	id, secret := getenv(envClientID), getenv(envClientSecret)
	if secret != "" && id == "" {
		fmt.Fprintf(stderr, "connect: %s is set but %s is not\n", envClientSecret, envClientID)
		return exitUsage
	}
	cfg := tokenguard.Config{
		ResourceMetadataURL: *discovery,
		InsecureAllowHTTP:   *insecureHTTP,
		Logger:              slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if id != "" {
		cfg.Introspection = tokenguard.IntrospectionConfig{ClientID: id, ClientSecret: secret}
	}
	g, err := tokenguard.New(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "connect: %v\n", err)
		return exitFail
	}
	defer g.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "connect: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "resource %s, issuers %v\nserving on http://%s (Ctrl-C stops)\n", g.Resource(), g.Issuers(), ln.Addr())
	if err := serve(ctx, ln, connectAware(g)); err != nil {
		fmt.Fprintf(stderr, "connect: %v\n", err)
		return exitFail
	}
	return exitOK
}

// serve serves h on ln, over HTTP/1.1 and unencrypted HTTP/2 (h2c: gRPC
// clients need HTTP/2; put TLS in front in production), until ctx ends;
// then it shuts down gracefully, waiting at most 5 seconds.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: protocols, ReadHeaderTimeout: 10 * time.Second}
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
	if serveErr := <-errc; err == nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = serveErr
	}
	return err
}
