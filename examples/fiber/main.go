// Command fiber is the orders API on Fiber v3, protected through the
// tgfiber adapter: tgfiber.New authenticates a group, tgfiber.RequireScopes
// adds a route's scope, and tgfiber.PrincipalFrom reads the caller. It is a
// module of its own, so the other examples do not pull in fasthttp.
//
//	go -C examples/fiber run .                 # embedded authorization server + self-check
//	go -C examples/fiber run . -discovery URL  # a real one (RFC 9728 metadata URL)
//
// The self-check starts an oauthtest authorization server on loopback, builds
// the Guard from its RFC 9728 metadata, serves the API on a free loopback
// port with Fiber's own server (fasthttp), calls it with good and bad tokens,
// prints each outcome and exits 0 when every one is right, 1 otherwise.
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
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/tokenguard/tokenguard"
	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// The API's scopes: any valid token reads, creating needs scopeWrite.
const (
	scopeRead  = "orders:read"
	scopeWrite = "orders:write"
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

// order is one order of the API.
type order struct {
	ID    int    `json:"id"`
	Owner string `json:"owner"`
}

// orders is the API's in-memory store.
type orders struct {
	mu  sync.Mutex
	all []order
}

func (o *orders) list(owner string) []order {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := []order{}
	for _, ord := range o.all {
		if ord.Owner == owner {
			out = append(out, ord)
		}
	}
	return out
}

func (o *orders) create(owner string) order {
	o.mu.Lock()
	defer o.mu.Unlock()
	ord := order{ID: len(o.all) + 1, Owner: owner}
	o.all = append(o.all, ord)
	return ord
}

// routes builds the API: public GET /healthz, GET /orders for any valid
// token, POST /orders only with scopeWrite.
func routes(g *tokenguard.Guard, store *orders) *fiber.App {
	app := fiber.New()
	app.Get("/healthz", func(c fiber.Ctx) error {
		return c.JSON(fiber.Map{"status": "ok"})
	})
	api := app.Group("/orders", tgfiber.New(g)) // any valid token for every route below
	api.Get("/", func(c fiber.Ctx) error {
		p, _ := tgfiber.PrincipalFrom(c) // always there behind tgfiber.New
		return c.JSON(fiber.Map{"subject": p.Subject, "orders": store.list(p.Subject)})
	})
	api.Post("/", tgfiber.RequireScopes(g, scopeWrite), func(c fiber.Ctx) error {
		p, _ := tgfiber.PrincipalFrom(c)
		return c.Status(fiber.StatusCreated).JSON(store.create(p.Subject))
	})
	return app
}

// run is the whole program: args are its flags, getenv its environment. It
// returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fiber", flag.ContinueOnError)
	fs.SetOutput(stderr)
	discovery := fs.String("discovery", "", "the API's RFC 9728 protected-resource metadata `URL`: serve on -addr instead of\nrunning the embedded self-check (env "+envDiscovery+")")
	addr := fs.String("addr", "127.0.0.1:8080", "listen `address` in -discovery mode")
	insecureHTTP := fs.Bool("insecure-http", false, "allow http:// discovery and key URLs (a development server on loopback only)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: fiber [flags]\n\nAn orders API on Fiber protected by tokenguard. Without -discovery it runs a\nself-check against an embedded authorization server.\n\nEnvironment: %s, %s (turns on\nintrospection), %s.\n\nFlags:\n", envDiscovery, envClientID, envClientSecret)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fiber: unexpected arguments %q\n", fs.Args())
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["discovery"] {
		*discovery = getenv(envDiscovery)
	}
	if *discovery == "" {
		if set["addr"] || set["insecure-http"] {
			fmt.Fprintf(stderr, "fiber: -addr and -insecure-http apply only with -discovery (or %s)\n", envDiscovery)
			return exitUsage
		}
		return selfCheck(ctx, stdout, stderr)
	}

	id, secret := getenv(envClientID), getenv(envClientSecret)
	if secret != "" && id == "" {
		fmt.Fprintf(stderr, "fiber: %s is set but %s is not\n", envClientSecret, envClientID)
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
		fmt.Fprintf(stderr, "fiber: %v\n", err)
		return exitFail
	}
	defer g.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(stderr, "fiber: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "resource %s, issuers %v\nserving on http://%s (Ctrl-C stops)\n", g.Resource(), g.Issuers(), ln.Addr())
	if err := serve(ctx, routes(g, &orders{}), ln); err != nil {
		fmt.Fprintf(stderr, "fiber: %v\n", err)
		return exitFail
	}
	return exitOK
}

// serve runs app on ln until ctx ends, then shuts it down (at most 5
// seconds for requests in flight).
func serve(ctx context.Context, app *fiber.App, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	err := app.ShutdownWithTimeout(5 * time.Second)
	if serveErr := <-errc; err == nil && serveErr != nil && !errors.Is(serveErr, net.ErrClosed) {
		err = serveErr
	}
	return err
}

// Credentials of the embedded authorization server's clients.
const (
	demoClient, demoSecret = "demo-client", "demo-secret"      // calls the API
	apiClient, apiSecret   = "orders-api", "orders-api-secret" // the API itself, for introspection
)

// check is one call of the self-check and the answer it must get.
type check struct {
	name, method, path, token string
	status                    int
	challenge                 string // substring of WWW-Authenticate; "" means none may be sent
	errorCode                 string // the JSON body's "error"
	subject                   string // for a 2xx: the caller the handler saw
}

// selfCheck serves the API next to an embedded authorization server, both
// on loopback, and calls it as clients would.
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
		fmt.Fprintf(stderr, "fiber: %v\n", err)
		return exitFail
	}
	defer g.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintf(stderr, "fiber: %v\n", err)
		return exitFail
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- serve(serveCtx, routes(g, &orders{}), ln) }()
	defer func() {
		stopServing()
		if err := <-served; err != nil {
			fmt.Fprintf(stderr, "fiber: %v\n", err)
		}
	}()
	api := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "fiber API             %s (resource %s)\n\n", api, g.Resource())

	client := &http.Client{Timeout: 10 * time.Second}
	reader, err := clientCredentials(ctx, client, as.TokenURL(), scopeRead)
	if err != nil {
		fmt.Fprintf(stderr, "fiber: token request: %v\n", err)
		return exitFail
	}
	writer, err := clientCredentials(ctx, client, as.TokenURL(), scopeRead+" "+scopeWrite)
	if err != nil {
		fmt.Fprintf(stderr, "fiber: token request: %v\n", err)
		return exitFail
	}
	opaque := as.MintOpaque(oauthtest.Claims{"sub": "carol", "scope": scopeRead})

	checks := []check{
		{name: "public", method: "GET", path: "/healthz", status: 200},
		{name: "valid token", method: "GET", path: "/orders", token: reader, status: 200, subject: demoClient},
		{name: "no token", method: "GET", path: "/orders", status: 401, challenge: `resource_metadata="`},
		{name: "missing scope", method: "POST", path: "/orders", token: reader, status: 403,
			challenge: `error="insufficient_scope"`, errorCode: "insufficient_scope"},
		{name: "write scope", method: "POST", path: "/orders", token: writer, status: 201, subject: demoClient},
		{name: "opaque token", method: "GET", path: "/orders", token: opaque, status: 200, subject: "carol"},
	}
	failed := 0
	for _, c := range checks {
		status, challenge, verdict := c.run(ctx, client, api)
		if verdict != "ok" {
			failed++
		}
		fmt.Fprintf(stdout, "%-13s %-4s %-8s -> %d  %s\n", c.name, c.method, c.path, status, verdict)
		if challenge != "" {
			fmt.Fprintf(stdout, "%13s WWW-Authenticate: %s\n", "", challenge)
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "\n%d of %d outcomes were wrong\n", failed, len(checks))
		return exitFail
	}
	fmt.Fprintf(stdout, "\nall %d outcomes as expected\n", len(checks))
	return exitOK
}

// run makes the call and returns the status, the challenge, and "ok" or
// what was wrong.
func (c check) run(ctx context.Context, client *http.Client, api string) (int, string, string) {
	req, err := http.NewRequestWithContext(ctx, c.method, api+c.path, nil)
	if err != nil {
		return 0, "", "FAIL: " + err.Error()
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, "", "FAIL: " + err.Error()
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return res.StatusCode, "", "FAIL: " + err.Error()
	}
	challenge := res.Header.Get("WWW-Authenticate")
	var got struct {
		Error   string `json:"error"`
		Subject string `json:"subject"` // GET /orders
		Owner   string `json:"owner"`   // POST /orders
	}
	if c.errorCode != "" || c.subject != "" {
		if err := json.Unmarshal(body, &got); err != nil {
			return res.StatusCode, challenge, fmt.Sprintf("FAIL: body is not JSON: %.80q", body)
		}
	}
	switch {
	case res.StatusCode != c.status:
		return res.StatusCode, challenge, fmt.Sprintf("FAIL: want status %d", c.status)
	case c.challenge == "" && challenge != "":
		return res.StatusCode, challenge, "FAIL: unexpected WWW-Authenticate"
	case !strings.Contains(challenge, c.challenge):
		return res.StatusCode, challenge, "FAIL: want WWW-Authenticate containing " + c.challenge
	case got.Error != c.errorCode:
		return res.StatusCode, challenge, fmt.Sprintf("FAIL: body error %q, want %q", got.Error, c.errorCode)
	case c.subject != "" && got.Subject+got.Owner != c.subject:
		return res.StatusCode, challenge, fmt.Sprintf("FAIL: handler saw caller %q, want %q", got.Subject+got.Owner, c.subject)
	}
	return res.StatusCode, challenge, "ok"
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
