package tgfiber_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v3"

	"github.com/tokenguard/tokenguard"
	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// A DPoP client (a fresh proof per request, naming the URL it calls) gets
// through Fiber over a real socket with the Guard's Origin set to the
// server's URL; the same token without the proof, or sent as Bearer, does
// not.
func TestDPoPClient(t *testing.T) {
	var g *tokenguard.Guard
	app := fiber.New()
	app.Get("/orders/:id", func(c fiber.Ctx) error { return tgfiber.New(g)(c) }, func(c fiber.Ctx) error {
		p, _ := tgfiber.PrincipalFrom(c)
		return c.SendString(p.Subject + " " + c.Params("id") + " " + p.Binding.JKT)
	})
	base := serve(t, app, nil)
	as, guard := newGuard(t, func(c *tokenguard.Config) {
		c.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: base}
	})
	g = guard
	key := oauthtest.NewDPoPKey("ES256")
	tok := as.Mint(key.Bind(oauthtest.Claims{"sub": "alice"}))

	res, body := get(t, as.DPoPClient(key, tok), base+"/orders/7?x=1", nil)
	if res.StatusCode != 200 || body != "alice 7 "+key.Thumbprint() {
		t.Errorf("DPoP client: %d %q", res.StatusCode, body)
	}
	for name, h := range map[string]http.Header{
		"no proof":  {"Authorization": {"DPoP " + tok}},
		"as Bearer": {"Authorization": {"Bearer " + tok}},
	} {
		if res, _ := get(t, http.DefaultClient, base+"/orders/7", h); res.StatusCode != 401 || len(res.Header.Values("WWW-Authenticate")) != 2 {
			t.Errorf("%s: %d %q", name, res.StatusCode, res.Header.Values("WWW-Authenticate"))
		}
	}
}

// A token in a form body (Config.AllowFormToken) is found, and the handler
// still reads the whole body afterwards; one in the query
// (Config.AllowQueryToken) too. A body that is not a form is not read for a
// token.
func TestFormAndQueryTokens(t *testing.T) {
	as, g := newGuard(t, func(c *tokenguard.Config) {
		c.AllowFormToken = true
		c.AllowQueryToken = true
	})
	app := fiber.New()
	app.Use(tgfiber.New(g))
	app.Post("/notes", func(c fiber.Ctx) error {
		p, _ := tgfiber.PrincipalFrom(c)
		return c.SendString(p.Subject + " " + c.FormValue("note") + " " + string(c.Body()))
	})
	app.Get("/notes", subject)
	base := serve(t, app, nil)
	tok := as.Mint(oauthtest.Claims{"sub": "alice"})

	form := url.Values{"access_token": {tok}, "note": {"hello"}}.Encode()
	res, err := http.Post(base+"/notes", "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, res)
	if res.StatusCode != 200 || body != "alice hello "+form {
		t.Errorf("form token: %d %q", res.StatusCode, body)
	}

	res, body = get(t, http.DefaultClient, base+"/notes?access_token="+tok, nil)
	if res.StatusCode != 200 || body != "alice" {
		t.Errorf("query token: %d %q", res.StatusCode, body)
	}

	res, err = http.Post(base+"/notes", "text/plain", strings.NewReader("access_token="+tok))
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(t, res); res.StatusCode != 401 {
		t.Errorf("token in a text body: %d %q", res.StatusCode, body)
	}
}

// A cookie token (CookieToken) is found in the Cookie header as fasthttp
// keeps it.
func TestCookieToken(t *testing.T) {
	as, g := newGuard(t, func(c *tokenguard.Config) {
		c.TokenSources = []tokenguard.TokenSource{tokenguard.CookieToken("at")}
	})
	app := fiber.New()
	app.Get("/me", tgfiber.New(g), subject)
	base := serve(t, app, nil)
	res, body := get(t, http.DefaultClient, base+"/me", http.Header{"Cookie": {"theme=dark; at=" + as.Mint(oauthtest.Claims{"sub": "alice"})}})
	if res.StatusCode != 200 || body != "alice" {
		t.Errorf("%d %q", res.StatusCode, body)
	}
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A Guard that issues DPoP nonces sends the current one with every
// accepted DPoP request, as Guard.Handler does, through each entry point
// that authenticates; a Bearer request gets none, and a RequireScopes after
// New does not authenticate again.
func TestDPoPNonceOnAcceptance(t *testing.T) {
	const origin = "https://api.example"
	as, g := newGuard(t, func(c *tokenguard.Config) {
		c.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: origin, NonceKey: []byte("tgfiber test nonce key, 32 bytes")}
	})
	app := fiber.New()
	app.Get("/new", tgfiber.New(g), subject)
	app.Get("/optional", tgfiber.Optional(g), subject)
	app.Get("/require", tgfiber.Require(g, tokenguard.ClaimIs("sub", "alice")), subject)
	app.Get("/both", tgfiber.New(g), tgfiber.RequireScopes(g, "orders:write"), subject)
	base := serve(t, app, nil)
	core := httptest.NewServer(g.Handler(nop))
	t.Cleanup(core.Close)

	key := oauthtest.NewDPoPKey("ES256")
	tok := as.Mint(key.Bind(oauthtest.Claims{"sub": "alice", "scope": "orders:write"}))
	dpop := func(path string) http.Header {
		return http.Header{"Authorization": {"DPoP " + tok}, "Dpop": {key.ProofWith(oauthtest.ProofOptions{
			Method: "GET", URL: origin + path, Token: tok, Nonce: g.DPoPNonce()})}}
	}
	want, _ := get(t, core.Client(), core.URL+"/new", dpop("/new"))
	if want.StatusCode != 200 || want.Header.Get("DPoP-Nonce") == "" {
		t.Fatalf("core: %d, DPoP-Nonce %q: the test is wrong", want.StatusCode, want.Header.Get("DPoP-Nonce"))
	}
	for _, path := range []string{"/new", "/optional", "/require", "/both"} {
		res, body := get(t, http.DefaultClient, base+path, dpop(path))
		if res.StatusCode != 200 || body != "alice" || !reflect.DeepEqual(res.Header.Values("DPoP-Nonce"), want.Header.Values("DPoP-Nonce")) {
			t.Errorf("%s: %d %q, DPoP-Nonce %q, core %q", path, res.StatusCode, body, res.Header.Values("DPoP-Nonce"), want.Header.Values("DPoP-Nonce"))
		}
	}
	res, _ := get(t, http.DefaultClient, base+"/new", http.Header{"Authorization": {"Bearer " + as.Mint(nil)}})
	if res.StatusCode != 200 || res.Header.Get("DPoP-Nonce") != "" {
		t.Errorf("Bearer: %d, DPoP-Nonce %q", res.StatusCode, res.Header.Get("DPoP-Nonce"))
	}
}
