package tgfiber_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/tokenguard/tokenguard"
	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// get sends a GET for url with the given header fields (each value its own
// field, in order) and returns the answer, its body read.
func get(t *testing.T, client *http.Client, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vv := range header {
		for _, v := range vv {
			req.Header.Add(k, v)
		}
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// A refusal through Fiber, over a real socket, is the core's own answer:
// the same status, the same header fields with every value in the same
// order (two WWW-Authenticate fields with DPoP allowed, Retry-After,
// Cache-Control, Content-Type, nothing of Fiber's), and the same body, byte
// for byte. Only Date differs, being the time.
func TestSameAnswerAsCore(t *testing.T) {
	const origin = "https://api.example"
	as, g := newGuard(t, func(c *tokenguard.Config) {
		c.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: origin}
	})
	app := fiber.New()
	app.Use(tgfiber.New(g))
	app.Get("/any", subject)
	app.Get("/scoped", tgfiber.RequireScopes(g, "orders:write"), subject)
	fiberURL := serve(t, app, nil)

	mux := http.NewServeMux()
	mux.Handle("GET /any", nop)
	mux.Handle("GET /scoped", g.RequireScopes("orders:write")(nop))
	core := httptest.NewServer(g.Handler(mux))
	t.Cleanup(core.Close)

	key := oauthtest.NewDPoPKey("ES256")
	bound := as.Mint(key.Bind(oauthtest.Claims{"sub": "alice"}))
	down := as.MintOpaque(nil)
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	tests := []struct {
		name, path string
		header     http.Header
		status     int
		before     func()
	}{
		{name: "no token", path: "/any", status: 401},
		{name: "not a JWT", path: "/any", header: bearer("e30.e30.e30"), status: 401},
		{name: "expired", path: "/any", header: bearer(as.Mint(oauthtest.Claims{"exp": 1, "iat": 0})), status: 401},
		{name: "missing scope", path: "/scoped", header: bearer(as.Mint(oauthtest.Claims{"scope": "orders:read"})), status: 403},
		{name: "two Authorization fields", path: "/any", header: http.Header{"Authorization": {"Bearer " + as.Mint(nil), "Bearer " + as.Mint(nil)}}, status: 400},
		{name: "unknown path, no token", path: "/nope", status: 401},
		{name: "bound token as Bearer", path: "/any", header: bearer(bound), status: 401},
		{name: "DPoP, no proof", path: "/any", header: http.Header{"Authorization": {"DPoP " + bound}}, status: 401},
		{name: "DPoP, proof for another path", path: "/any", status: 401, header: http.Header{
			"Authorization": {"DPoP " + bound}, "Dpop": {key.Proof("GET", origin+"/other", bound)}}},
		{name: "introspection down", path: "/any", header: bearer(down), status: 503, before: func() {
			as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			want, wantBody := get(t, core.Client(), core.URL+tc.path, tc.header)
			got, gotBody := get(t, http.DefaultClient, fiberURL+tc.path, tc.header)
			if want.StatusCode != tc.status {
				t.Fatalf("core answered %d, want %d: the test is wrong", want.StatusCode, tc.status)
			}
			if got.StatusCode != want.StatusCode {
				t.Errorf("status %d, core %d", got.StatusCode, want.StatusCode)
			}
			want.Header.Del("Date")
			got.Header.Del("Date")
			if !reflect.DeepEqual(got.Header, want.Header) {
				t.Errorf("headers\n got %v\n core %v", got.Header, want.Header)
			}
			if gotBody != wantBody {
				t.Errorf("body\n got %q\n core %q", gotBody, wantBody)
			}
			if strings.HasPrefix(tc.name, "DPoP") || tc.name == "bound token as Bearer" {
				if n := len(got.Header.Values("WWW-Authenticate")); n != 2 {
					t.Errorf("%d WWW-Authenticate fields, want 2", n)
				}
			}
		})
	}
}

// A refusal stops the chain: the next handlers do not run, and a
// middleware in front sees the core's status once c.Next returns, with no
// error of the adapter's (Fiber's error handler writes nothing).
func TestRefusalStopsChain(t *testing.T) {
	as, g := newGuard(t)
	var status int
	var err error
	app := fiber.New()
	app.Use(func(c fiber.Ctx) error {
		err = c.Next()
		status = c.Response().StatusCode()
		return err
	})
	app.Use(tgfiber.New(g))
	app.Get("/any", func(c fiber.Ctx) error {
		t.Error("handler reached")
		return c.SendString("reached")
	})
	for _, tok := range []string{"", "garbage", forge(as.Mint(nil)), as.Mint(oauthtest.Claims{"exp": 1, "iat": 0})} {
		w := do(tester{app}, "/any", tok)
		if w.Code != http.StatusUnauthorized || status != http.StatusUnauthorized || err != nil {
			t.Errorf("code %d, outer middleware saw status %d, error %v", w.Code, status, err)
		}
		if strings.Contains(w.Body.String(), "reached") {
			t.Errorf("body %q", w.Body)
		}
	}
}

// The guard on a group protects that group only; routes outside it stay
// open and see no Principal.
func TestGroup(t *testing.T) {
	as, g := newGuard(t)
	app := fiber.New()
	app.Get("/health", subject)
	api := app.Group("/api", tgfiber.New(g))
	api.Get("/me", subject)
	api.Get("/orders/:id", func(c fiber.Ctx) error {
		p, _ := tgfiber.PrincipalFrom(c)
		return c.SendString(p.Subject + " " + c.Params("id"))
	})

	alice := as.Mint(oauthtest.Claims{"sub": "alice"})
	tests := []struct {
		name, path, token string
		status            int
		body              string
	}{
		{name: "public route, no token", path: "/health", status: 200, body: "-"},
		{name: "public route, with token", path: "/health", token: alice, status: 200, body: "-"},
		{name: "public route, bad token", path: "/health", token: "garbage", status: 200, body: "-"},
		{name: "group, no token", path: "/api/me", status: 401},
		{name: "group, bad token", path: "/api/me", token: "garbage", status: 401},
		{name: "group, valid token", path: "/api/me", token: alice, status: 200, body: "alice"},
		{name: "group, path parameter", path: "/api/orders/42", token: alice, status: 200, body: "alice 42"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(tester{app}, tc.path, tc.token)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tc.status, w.Body)
			}
			if tc.body != "" && w.Body.String() != tc.body {
				t.Errorf("body %q, want %q", w.Body, tc.body)
			}
			if tc.status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate on a 401")
			}
		})
	}
}

// RequireScopes with no New in front authenticates the request itself: a
// route is never left open by a forgotten New.
func TestRequireScopesWithoutNew(t *testing.T) {
	as, g := newGuard(t)
	app := fiber.New()
	app.Post("/orders", tgfiber.RequireScopes(g, "orders:write"), func(c fiber.Ctx) error {
		p, ok := tgfiber.PrincipalFrom(c)
		if !ok {
			return c.SendStatus(http.StatusInternalServerError)
		}
		return c.Status(http.StatusCreated).SendString(p.Subject)
	})

	noTokenChallenge := `Bearer realm="` + g.Resource() + `", scope="orders:write", resource_metadata="` + g.ResourceMetadataURL() + `"`
	tests := []struct {
		name, token string
		status      int
		challenge   string
		body        string
	}{
		{name: "no token", status: 401, challenge: noTokenChallenge, body: `{"error_description":"bearer token required","scope":"orders:write"}` + "\n"},
		{name: "forged", token: forge(as.Mint(nil)), status: 401},
		{name: "opaque, revoked", token: func() string { tok := as.MintOpaque(nil); as.Revoke(tok); return tok }(), status: 401},
		{name: "missing scope", token: as.Mint(oauthtest.Claims{"scope": "orders:read"}), status: 403},
		{name: "scope granted", token: as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:write"}), status: 201, body: "alice"},
		{name: "opaque, scope granted", token: as.MintOpaque(oauthtest.Claims{"sub": "bob", "scope": "orders:write"}), status: 201, body: "bob"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/orders", nil)
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			w := httptest.NewRecorder()
			tester{app}.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (body %s)", w.Code, tc.status, w.Body)
			}
			if tc.challenge != "" && w.Header().Get("WWW-Authenticate") != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", w.Header().Get("WWW-Authenticate"), tc.challenge)
			}
			if tc.status >= 400 && w.Header().Get("WWW-Authenticate") == "" {
				t.Error("no WWW-Authenticate")
			}
			if tc.body != "" && w.Body.String() != tc.body {
				t.Errorf("body %q, want %q", w.Body, tc.body)
			}
		})
	}
}

// New followed by RequireScopes authenticates once: RequireScopes reuses
// New's Principal, and every way of reading it gives that same Principal.
func TestSamePrincipalEverywhere(t *testing.T) {
	as, g := newGuard(t)
	var fromNew *tokenguard.Principal
	app := fiber.New()
	app.Use(tgfiber.New(g))
	app.Use(func(c fiber.Ctx) error {
		fromNew, _ = tgfiber.PrincipalFrom(c)
		return c.Next()
	})
	app.Get("/scoped", tgfiber.RequireScopes(g, "orders:write"), func(c fiber.Ctx) error {
		p, ok := tgfiber.PrincipalFrom(c)
		cp, cok := tokenguard.PrincipalFrom(c.Context())
		switch {
		case !ok || !cok:
			t.Errorf("PrincipalFrom %v, tokenguard.PrincipalFrom(c.Context()) %v", ok, cok)
		case p != cp || p != fromNew:
			t.Errorf("different principals: %p, c.Context() %p, New %p", p, cp, fromNew)
		}
		return c.SendStatus(http.StatusNoContent)
	})

	// An opaque token, so a second authentication would show as a second
	// introspection call.
	tok := as.MintOpaque(oauthtest.Claims{"scope": "orders:write"})
	if w := do(tester{app}, "/scoped", tok); w.Code != http.StatusNoContent {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if n := as.Requests(oauthtest.EndpointIntrospect); n != 1 {
		t.Errorf("%d introspection calls, want 1", n)
	}
}

// The Principal is in c.Context(), where code handed that context finds it
// with tokenguard.PrincipalFrom, next to the values Fiber middleware in
// front put there. The fiber.Ctx, itself a context.Context whose Value
// reads c.Locals, does not carry it: PrincipalFrom's documentation says so,
// and this holds it to that.
func TestPrincipalInContext(t *testing.T) {
	as, g := newGuard(t)
	type key struct{}
	app := fiber.New()
	app.Use(func(c fiber.Ctx) error {
		c.SetContext(context.WithValue(c.Context(), key{}, "from the front"))
		return c.Next()
	})
	app.Use(tgfiber.New(g))
	app.Get("/me", func(c fiber.Ctx) error {
		service := func(ctx context.Context) string {
			p, ok := tokenguard.PrincipalFrom(ctx)
			if !ok {
				return "none"
			}
			return p.Subject + " " + ctx.Value(key{}).(string)
		}
		if _, ok := tokenguard.PrincipalFrom(c); ok {
			t.Error("the fiber.Ctx as a context.Context carries the Principal: update PrincipalFrom's documentation")
		}
		return c.SendString(service(c.Context()))
	})
	if w := do(tester{app}, "/me", as.Mint(oauthtest.Claims{"sub": "alice"})); w.Code != 200 || w.Body.String() != "alice from the front" {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// PrincipalFrom reports false where there is no Principal: a route without
// the guard, with or without a token, and a nil Ctx.
func TestPrincipalFromUnauthenticated(t *testing.T) {
	as, g := newGuard(t)
	_ = g
	app := fiber.New()
	app.Get("/open", subject)
	for _, tok := range []string{"", as.Mint(nil)} {
		if w := do(tester{app}, "/open", tok); w.Body.String() != "-" {
			t.Errorf("unguarded route saw %q", w.Body)
		}
	}
	if p, ok := tgfiber.PrincipalFrom(nil); ok || p != nil {
		t.Errorf("PrincipalFrom(nil) = %v, %v", p, ok)
	}
}

// Config.ErrorHandler's answer goes out as it wrote it: its status, its
// Content-Type (or, without one, the sniffed type net/http would send), its
// body; the core's headers are there, and header fields a middleware in
// front set stay, except a WWW-Authenticate, which is the core's alone.
func TestErrorHandler(t *testing.T) {
	for _, tc := range []struct {
		name        string
		handler     func(w http.ResponseWriter, r *http.Request, e *tokenguard.Error)
		status      int
		contentType string
		body        string
	}{
		{"problem+json", func(w http.ResponseWriter, _ *http.Request, e *tokenguard.Error) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(e.Status)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": e.Status, "title": e.Description})
		}, 401, "application/problem+json", `{"status":401,"title":"token expired"}` + "\n"},
		{"no status, no type", func(w http.ResponseWriter, _ *http.Request, e *tokenguard.Error) {
			_, _ = io.WriteString(w, "<html><body>denied</body></html>")
		}, 401, "text/html; charset=utf-8", "<html><body>denied</body></html>"},
		{"nothing written", func(http.ResponseWriter, *http.Request, *tokenguard.Error) {}, 401, "", ""},
		{"a status of its own", func(w http.ResponseWriter, _ *http.Request, e *tokenguard.Error) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusTeapot)
			_, _ = io.WriteString(w, "no")
		}, 418, "text/plain", "no"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as, g := newGuard(t, func(c *tokenguard.Config) { c.ErrorHandler = tc.handler })
			app := fiber.New()
			app.Use(func(c fiber.Ctx) error {
				c.Set("Access-Control-Allow-Origin", "*")
				c.Set("WWW-Authenticate", "Basic realm=stale")
				return c.Next()
			})
			app.Use(tgfiber.New(g))
			app.Get("/any", subject)
			url := serve(t, app, nil)
			res, body := get(t, http.DefaultClient, url+"/any", http.Header{"Authorization": {"Bearer " + as.Mint(oauthtest.Claims{"exp": 1, "iat": 0})}})
			if res.StatusCode != tc.status || body != tc.body {
				t.Errorf("%d %q, want %d %q", res.StatusCode, body, tc.status, tc.body)
			}
			if ct, ok := res.Header["Content-Type"]; tc.contentType == "" && ok || tc.contentType != "" && (len(ct) != 1 || ct[0] != tc.contentType) {
				t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
			}
			if got, want := res.Header.Values("WWW-Authenticate"), []string{challenge(g, "invalid_token", "token expired")}; !reflect.DeepEqual(got, want) {
				t.Errorf("WWW-Authenticate %q, want %q", got, want)
			}
			if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("headers %v", res.Header)
			}
		})
	}
}

// A request-target that net/http's server would refuse before any handler
// (it does not parse as a request URI) is refused here too, with 400, and
// reaches no handler: the core is never asked about a request it cannot
// see as net/http would.
func TestUnparsableRequestTarget(t *testing.T) {
	_, g := newGuard(t)
	app := fiber.New()
	app.Use(tgfiber.Optional(g))
	app.Use(func(c fiber.Ctx) error {
		t.Errorf("handler reached for %q", c.RequestCtx().RequestURI())
		return c.SendStatus(200)
	})
	addr := strings.TrimPrefix(serve(t, app, nil), "http://")
	for _, target := range []string{"/%zz", "/any%"} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%q: %v", target, err)
		}
		res.Body.Close()
		conn.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: status %d, want 400", target, res.StatusCode)
		}
	}
}
