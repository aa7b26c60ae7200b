package tgfiber_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"
	fiberlog "github.com/gofiber/fiber/v3/log"

	"github.com/tokenguard/tokenguard"
	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// conn is one keep-alive connection to a server, for requests written as
// raw bytes one after the other.
type conn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, base string) *conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{t: t, c: c, br: bufio.NewReader(c)}
}

// get sends a GET for path with the given Authorization values and returns
// the status and body.
func (c *conn) get(path string, auth ...string) (int, string) {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: api.example\r\n", path)
	for _, a := range auth {
		fmt.Fprintf(&b, "Authorization: %s\r\n", a)
	}
	b.WriteString("\r\n")
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, b.String()); err != nil {
		c.t.Fatal(err)
	}
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.Close {
		c.t.Fatalf("the server closed the connection after %s", path)
	}
	return res.StatusCode, string(body)
}

// fasthttp reuses one request context for every request of a keep-alive
// connection. A Principal stored for one request is not there for the next
// on the same connection: not in c.Context(), not in any user value (Fiber
// keeps c.Context() and c.Locals there), whether the next request is
// anonymous, refused, or carries another token. A front middleware checks
// this before the adapter runs; the handlers report what they see.
func TestNoPrincipalAcrossKeepAlive(t *testing.T) {
	as, g := newGuard(t)
	var (
		mu    sync.Mutex
		ctxs  = map[string]bool{} // the fasthttp request contexts seen
		leaks []string
	)
	app := fiber.New()
	app.Use(func(c fiber.Ctx) error {
		mu.Lock()
		ctxs[fmt.Sprintf("%p", c.RequestCtx())] = true
		if p, ok := tokenguard.PrincipalFrom(c.Context()); ok {
			leaks = append(leaks, fmt.Sprintf("request %d: c.Context() holds %q", c.RequestCtx().ConnRequestNum(), p.Subject))
		}
		c.RequestCtx().VisitUserValuesAll(func(k, v any) {
			if ctx, ok := v.(context.Context); ok {
				if p, ok := tokenguard.PrincipalFrom(ctx); ok {
					leaks = append(leaks, fmt.Sprintf("request %d: user value %v holds %q", c.RequestCtx().ConnRequestNum(), k, p.Subject))
				}
			}
			if _, ok := v.(*tokenguard.Principal); ok {
				leaks = append(leaks, fmt.Sprintf("request %d: user value %v is a Principal", c.RequestCtx().ConnRequestNum(), k))
			}
		})
		mu.Unlock()
		return c.Next()
	})
	app.Get("/optional", tgfiber.Optional(g), subject)
	app.Get("/guarded", tgfiber.New(g), subject)
	app.Get("/scoped", tgfiber.RequireScopes(g, "orders:write"), subject)
	app.Get("/open", subject)
	c := dial(t, serve(t, app, nil))

	alice := "Bearer " + as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:write"})
	bob := "Bearer " + as.MintOpaque(oauthtest.Claims{"sub": "bob"})
	steps := []struct {
		path   string
		auth   []string
		status int
		body   string
	}{
		{"/optional", []string{alice}, 200, "alice"},
		{"/optional", nil, 200, "-"},
		{"/guarded", []string{alice}, 200, "alice"},
		{"/open", nil, 200, "-"},
		{"/scoped", []string{alice}, 200, "alice"},
		{"/guarded", nil, 401, ""},
		{"/scoped", []string{bob}, 403, ""},
		{"/optional", []string{bob}, 200, "bob"},
		{"/optional", []string{"Bearer " + forge(as.Mint(nil))}, 401, ""},
		{"/optional", []string{"Basic YTpi"}, 200, "-"},
		{"/guarded", []string{alice, bob}, 400, ""},
		{"/open", nil, 200, "-"},
	}
	for i, s := range steps {
		status, body := c.get(s.path, s.auth...)
		if status != s.status || s.body != "" && body != s.body {
			t.Errorf("request %d, %s: %d %q, want %d %q", i+1, s.path, status, body, s.status, s.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ctxs) != 1 {
		t.Fatalf("%d request contexts for one connection: the test does not exercise the reuse", len(ctxs))
	}
	for _, l := range leaks {
		t.Error(l)
	}
}

// Many clients at once over a few keep-alive connections, each with a token
// of its own or none: every handler sees its own caller, never another's.
// Run with -race.
func TestConcurrentCallersStayApart(t *testing.T) {
	as, g := newGuard(t)
	app := fiber.New()
	app.Get("/optional", tgfiber.Optional(g), func(c fiber.Ctx) error {
		want := c.Get("X-Want")
		got := "-"
		if p, ok := tgfiber.PrincipalFrom(c); ok {
			got = p.Subject
		}
		if got != want {
			return c.Status(500).SendString("saw " + got + ", want " + want)
		}
		return c.SendString(got)
	})
	base := serve(t, app, nil)
	tr := &http.Transport{MaxConnsPerHost: 3, MaxIdleConnsPerHost: 3}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	const callers = 8
	tokens := make([]string, callers)
	for i := range tokens {
		if i%3 != 2 { // every third caller is anonymous
			tokens[i] = as.Mint(oauthtest.Claims{"sub": fmt.Sprintf("user-%d", i)})
		}
	}
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := "-"
			if tokens[i] != "" {
				want = fmt.Sprintf("user-%d", i)
			}
			for range 25 {
				req, _ := http.NewRequest(http.MethodGet, base+"/optional", nil)
				req.Header.Set("X-Want", want)
				if tokens[i] != "" {
					req.Header.Set("Authorization", "Bearer "+tokens[i])
				}
				res, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || string(body) != want {
					t.Errorf("caller %d: %d %s", i, res.StatusCode, body)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// syncBuffer is a bytes.Buffer for loggers written from several goroutines.
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

// No token, and no DPoP proof, reaches a log: neither the Guard's logger at
// Debug (every refusal is logged there) nor Fiber's, for accepted and
// refused requests of every kind through every entry point.
func TestNoTokenInLogs(t *testing.T) {
	var logs syncBuffer
	fiberlog.SetOutput(&logs)
	t.Cleanup(func() { fiberlog.SetOutput(io.Discard) })
	const origin = "https://api.example"
	as, g := newGuard(t, func(c *tokenguard.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: origin}
	})
	app := fiber.New()
	app.Get("/any", tgfiber.New(g), subject)
	app.Get("/optional", tgfiber.Optional(g), subject)
	app.Get("/scoped", tgfiber.RequireScopes(g, "orders:write"), subject)
	app.Get("/tenant", tgfiber.Require(g, tokenguard.ClaimIs("tenant", "acme")), subject)
	base := serve(t, app, nil)

	key := oauthtest.NewDPoPKey("ES256")
	bound := as.Mint(key.Bind(oauthtest.Claims{"sub": "dora"}))
	revoked := as.MintOpaque(nil)
	as.Revoke(revoked)
	var secrets []string
	check := func(path string, header http.Header) {
		for _, vv := range header {
			for _, v := range vv {
				_, tok, _ := strings.Cut(v, " ")
				if tok == "" {
					tok = v
				}
				secrets = append(secrets, tok)
			}
		}
		get(t, http.DefaultClient, base+path, header)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for _, path := range []string{"/any", "/optional", "/scoped", "/tenant"} {
		check(path, bearer(as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:write", "tenant": "acme"})))
		check(path, bearer(as.Mint(oauthtest.Claims{"exp": 1, "iat": 0})))
		check(path, bearer(forge(as.Mint(nil))))
		check(path, bearer(as.Mint(oauthtest.Claims{"aud": "https://elsewhere.example"})))
		check(path, bearer(as.MintOpaque(oauthtest.Claims{"sub": "bob"})))
		check(path, bearer(revoked))
		check(path, bearer("not-a-jwt-but-secret-0123456789"))
		check(path, http.Header{"Authorization": {"Bearer " + as.Mint(nil), "Bearer " + as.Mint(nil)}})
		check(path, bearer(bound))
		check(path, http.Header{"Authorization": {"DPoP " + bound}, "Dpop": {key.Proof("GET", origin+"/other", bound)}})
		check(path, http.Header{"Authorization": {"DPoP " + bound}, "Dpop": {key.Proof("GET", origin+path, bound)}})
	}
	out := logs.String()
	if !strings.Contains(out, "tokenguard: request rejected") {
		t.Fatalf("nothing logged; the test is vacuous:\n%s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("a token or proof is in the log: %.20s…", s)
		}
		if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i > 16 && strings.Contains(out, s[i+1:]) {
			t.Errorf("a signature is in the log: %.20s…", s[i+1:])
		}
	}
}
