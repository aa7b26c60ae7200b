package tgfiber_test

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v3"
	"github.com/valyala/fasthttp"

	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// The adapter's cost on the request path: Fiber's handler for a request
// with an accepted JWT (verified once, then served from the Guard's token
// cache, as a client's repeated calls are), against the bare Fiber handler
// and against the core's own net/http Handler for the same request. The
// request is a typical API call: Host, User-Agent, Accept, Authorization
// and a few more fields. No socket: the fasthttp request context is handed
// to app.Handler() directly, as fasthttp's server would, and reset between
// iterations as the server resets it.
//
//	go test -run '^$' -bench . -benchmem
func BenchmarkFiber(b *testing.B) {
	as, g := newGuard(b)
	tok := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read orders:write"})
	ok := func(c fiber.Ctx) error { return c.SendStatus(http.StatusNoContent) }
	header := map[string]string{
		"User-Agent":      "bench/1.0",
		"Accept":          "application/json",
		"Accept-Encoding": "gzip",
		"X-Request-Id":    "0f6c2a9e-5d1b-4c8e-9a3f-7b2d1e4c6a80",
		"Authorization":   "Bearer " + tok,
	}

	run := func(b *testing.B, app *fiber.App, auth bool, want int) {
		raw := "GET /orders/42?expand=items HTTP/1.1\r\nHost: api.example\r\n"
		for _, k := range []string{"User-Agent", "Accept", "Accept-Encoding", "X-Request-Id", "Authorization"} {
			if k != "Authorization" || auth {
				raw += k + ": " + header[k] + "\r\n"
			}
		}
		var req fasthttp.Request // parsed from the bytes, as fasthttp's server does
		if err := req.Read(bufio.NewReader(strings.NewReader(raw + "\r\n"))); err != nil {
			b.Fatal(err)
		}
		var fctx fasthttp.RequestCtx
		fctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}, nil)
		h := app.Handler()
		h(&fctx) // the token is verified once and cached
		if got := fctx.Response.StatusCode(); got != want {
			b.Fatalf("status %d, want %d", got, want)
		}
		b.ReportAllocs()
		for b.Loop() {
			fctx.Response.Reset()
			fctx.ResetUserValues()
			h(&fctx)
		}
		if got := fctx.Response.StatusCode(); got != want {
			b.Fatalf("status %d, want %d", got, want)
		}
	}

	b.Run("bare", func(b *testing.B) {
		app := fiber.New()
		app.Get("/orders/:id", ok)
		run(b, app, true, http.StatusNoContent)
	})
	b.Run("New", func(b *testing.B) {
		app := fiber.New()
		app.Get("/orders/:id", tgfiber.New(g), ok)
		run(b, app, true, http.StatusNoContent)
	})
	b.Run("New+RequireScopes", func(b *testing.B) {
		app := fiber.New()
		app.Get("/orders/:id", tgfiber.New(g), tgfiber.RequireScopes(g, "orders:write"), ok)
		run(b, app, true, http.StatusNoContent)
	})
	b.Run("New refused", func(b *testing.B) {
		app := fiber.New()
		app.Get("/orders/:id", tgfiber.New(g), ok)
		run(b, app, false, http.StatusUnauthorized)
	})

	// The core alone, for reference: the same request as net/http's server
	// would hand it to Guard.Handler.
	b.Run("core net/http Handler", func(b *testing.B) {
		h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
		r := httptest.NewRequest(http.MethodGet, "http://api.example/orders/42?expand=items", nil)
		for k, v := range header {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
		if w.Code != http.StatusNoContent {
			b.Fatalf("status %d", w.Code)
		}
	})
}
