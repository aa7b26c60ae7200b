// Command telnyx protects GET /whoami with tokens issued by Telnyx's OAuth
// 2.0 service, found through its RFC 8414 metadata at
// https://api.telnyx.com/.well-known/oauth-authorization-server.
// Tokens that are JWTs are verified against the published keys; any other
// token is checked at Telnyx's introspection endpoint (RFC 7662) with this
// API's own client credentials.
//
//	TELNYX_CLIENT_ID=... TELNYX_CLIENT_SECRET=... TELNYX_RESOURCE=https://api.example.com \
//	    go -C examples run ./telnyx [-addr 127.0.0.1:8080]
//
// Without the environment it says what to set and exits 2, before any
// network access.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/examples/internal/demo"
)

const (
	// issuer is Telnyx's issuer identifier; tokenguard fetches its RFC 8414
	// metadata from discoveryURL (falling back to OpenID discovery).
	issuer       = "https://api.telnyx.com"
	discoveryURL = issuer + "/.well-known/oauth-authorization-server"
)

// The environment, in the order the help lists it.
var env = []struct{ name, meaning string }{
	{"TELNYX_CLIENT_ID", "client id of this API's own OAuth client at Telnyx; with the secret it\n" +
		"authenticates the calls to Telnyx's introspection endpoint for opaque tokens"},
	{"TELNYX_CLIENT_SECRET", "that client's secret"},
	{"TELNYX_RESOURCE", "this API's resource identifier, such as https://api.example.com: the\n" +
		"audience (aud) a token must be issued for, the value clients send as\n" +
		"resource= (RFC 8707) when they ask Telnyx for a token"},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("telnyx", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", demo.DefaultAddr, "listen `address`")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: telnyx [-addr %s]\n\nServes GET /whoami for tokens issued by %s.\n\n", demo.DefaultAddr, issuer)
		printEnv(stderr)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return demo.ExitOK
		}
		return demo.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "telnyx: unexpected arguments %q\n", fs.Args())
		return demo.ExitUsage
	}
	var missing []string
	for _, v := range env {
		if getenv(v.name) == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "telnyx: not configured: set %s\n\n", strings.Join(missing, ", "))
		printEnv(stderr)
		fmt.Fprintln(stderr, "\nthen: TELNYX_CLIENT_ID=... TELNYX_CLIENT_SECRET=... TELNYX_RESOURCE=https://api.example.com go -C examples run ./telnyx")
		return demo.ExitUsage
	}

	cfg := config(getenv)
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	g, err := tokenguard.New(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "telnyx:", err)
		return demo.ExitFail
	}
	defer g.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "telnyx:", err)
		return demo.ExitFail
	}
	fmt.Fprintf(stdout, "trusting %s for resource %s\n", issuer, g.Resource())
	fmt.Fprintf(stdout, "serving GET /whoami on http://%s (Ctrl-C stops)\n", ln.Addr())
	if err := demo.Serve(ctx, ln, routes(g)); err != nil {
		fmt.Fprintln(stderr, "telnyx:", err)
		return demo.ExitFail
	}
	return demo.ExitOK
}

// config is the Guard's configuration for Telnyx: the issuer is fixed, so
// discovery is RFC 8414 at discoveryURL and nothing else.
func config(getenv func(string) string) tokenguard.Config {
	return tokenguard.Config{
		Issuer:   issuer,
		Resource: getenv("TELNYX_RESOURCE"),
		Introspection: tokenguard.IntrospectionConfig{
			ClientID:     getenv("TELNYX_CLIENT_ID"),
			ClientSecret: getenv("TELNYX_CLIENT_SECRET"),
			// Telnyx allows 5 introspection calls a minute per client; answers
			// are cached until the token expires (at most MaxTTL), so each
			// distinct opaque token costs about one call per 5 minutes.
		},
	}
}

func printEnv(w io.Writer) {
	fmt.Fprintf(w, "Tokens are trusted from %s (metadata at %s).\nEnvironment (all required):\n", issuer, discoveryURL)
	for _, v := range env {
		fmt.Fprintf(w, "  %-21s %s\n", v.name, indent(v.meaning))
	}
}

// indent lines up the continuation lines of a meaning under its first.
func indent(s string) string {
	return strings.ReplaceAll(s, "\n", "\n"+strings.Repeat(" ", 24))
}

// whoami is what GET /whoami answers: the caller as the token describes it.
type whoami struct {
	Subject  string    `json:"subject"`
	ClientID string    `json:"client_id,omitempty"`
	Issuer   string    `json:"issuer"`
	Scopes   []string  `json:"scopes"`
	Kind     string    `json:"kind"` // jwt or opaque
	Expiry   time.Time `json:"expiry"`
}

func routes(g *tokenguard.Guard) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /whoami", g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(whoami{
			Subject: p.Subject, ClientID: p.ClientID, Issuer: p.Issuer,
			Scopes: p.Scopes, Kind: p.Kind.String(), Expiry: p.Expiry,
		})
	})))
	return mux
}
