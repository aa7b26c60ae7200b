package tgfiber_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v3"

	"github.com/tokenguard/tokenguard"
	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest/conformance"
)

// probe is the conformance handler: it reports the Principal as Fiber code
// sees it (Probe writes to an http.ResponseWriter, whose answer is copied
// into Fiber's).
func probe(s conformance.Setup) fiber.Handler {
	return func(c fiber.Ctx) error {
		p, _ := tgfiber.PrincipalFrom(c)
		rec := httptest.NewRecorder()
		s.Probe(rec, p)
		for k, vv := range rec.Header() {
			for _, v := range vv {
				c.Response().Header.Add(k, v)
			}
		}
		return c.Status(rec.Code).Send(rec.Body.Bytes())
	}
}

// routes mounts the table's two routes: New for the whole app,
// RequireScopes in front of the scoped route's handler.
func routes(s conformance.Setup) *fiber.App {
	app := fiber.New()
	app.Use(tgfiber.New(s.Guard))
	app.Get(conformance.PathAny, probe(s))
	app.Get(conformance.PathScoped, tgfiber.RequireScopes(s.Guard, conformance.ScopeRequired), probe(s))
	return app
}

// The conformance table through Fiber over a real fasthttp server on
// loopback: each row's request is sent to it by an HTTP client, every
// header value as the table wrote it, and its answer (every header value,
// status and body) comes back to the table as it was sent.
func TestConformance(t *testing.T) {
	conformance.Run(t, func(t testing.TB, s conformance.Setup) http.Handler {
		return newForwarder(t, routes(s))
	})
}

// The table with the guard per route, and RequireScopes alone on the
// scoped route, so that it authenticates by itself; over loopback too.
func TestConformancePerRoute(t *testing.T) {
	conformance.Run(t, func(t testing.TB, s conformance.Setup) http.Handler {
		app := fiber.New()
		app.Get(conformance.PathAny, tgfiber.New(s.Guard), probe(s))
		app.Get(conformance.PathScoped, tgfiber.RequireScopes(s.Guard, conformance.ScopeRequired), probe(s))
		return newForwarder(t, app)
	})
}

// The table inside a group that carries the guard, through app.Test: no
// socket, Fiber's own in-memory connection.
func TestConformanceAppTest(t *testing.T) {
	conformance.Run(t, func(_ testing.TB, s conformance.Setup) http.Handler {
		app := fiber.New()
		api := app.Group("/", tgfiber.New(s.Guard))
		api.Get(conformance.PathAny, probe(s))
		api.Get(conformance.PathScoped, tgfiber.Require(s.Guard, tokenguard.AllScopes(conformance.ScopeRequired)), probe(s))
		return tester{app}
	})
}
