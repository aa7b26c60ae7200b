package tgfiber_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/tokenguard/tokenguard"
	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest"
)

const (
	rsClient, rsSecret = "tgfiber-test-rs", "tgfiber test secret"
)

// newGuard starts an authorization server and a Guard trusting it, with
// introspection for opaque tokens; both are closed when t ends. edit, if
// given, changes the Guard's configuration first.
func newGuard(t testing.TB, edit ...func(*tokenguard.Config)) (*oauthtest.Server, *tokenguard.Guard) {
	t.Helper()
	as := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(as.Close)
	as.RegisterClient(rsClient, rsSecret)
	cfg := tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true,
		Introspection:       tokenguard.IntrospectionConfig{ClientID: rsClient, ClientSecret: rsSecret},
	}
	for _, e := range edit {
		e(&cfg)
	}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return as, g
}

// serve runs app on a loopback listener (TLS when cfg is not nil) until t
// ends, and returns its base URL.
func serve(t testing.TB, app *fiber.App, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	scheme := "http"
	if cfg != nil {
		ln, scheme = tls.NewListener(ln, cfg), "https"
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	t.Cleanup(func() {
		if err := app.ShutdownWithTimeout(5 * time.Second); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return scheme + "://" + ln.Addr().String()
}

// forwarder is an http.Handler that sends each request it gets to the
// server at base with client, and answers with what that server answered:
// the method, the request-target, the Host and every header value (in
// order, repeated fields included) go out as they came in, and every
// response header value, the status and the body come back.
type forwarder struct {
	base   string
	client *http.Client
}

// newForwarder serves app on loopback and forwards to it over keep-alive
// connections.
func newForwarder(t testing.TB, app *fiber.App) *forwarder {
	t.Helper()
	tr := &http.Transport{DisableCompression: true} // no Accept-Encoding of its own
	t.Cleanup(tr.CloseIdleConnections)
	return &forwarder{base: serve(t, app, nil), client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (f *forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, f.base+r.URL.RequestURI(), r.Body)
	if err != nil {
		http.Error(w, "forwarder: "+err.Error(), http.StatusBadGateway)
		return
	}
	out.Host = r.Host
	for k, vv := range r.Header {
		for _, v := range vv {
			out.Header.Add(k, v)
		}
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // none of net/http's own
	}
	res, err := f.client.Do(out)
	if err != nil {
		http.Error(w, "forwarder: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	for k, vv := range res.Header {
		for _, v := range vv {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(res.StatusCode)
	_, _ = io.Copy(w, res.Body)
}

// tester is an http.Handler that hands each request to app.Test, and
// answers with the response.
type tester struct{ app *fiber.App }

func (a tester) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res, err := a.app.Test(r, fiber.TestConfig{Timeout: 10 * time.Second, FailOnTimeout: true})
	if err != nil {
		http.Error(w, "app.Test: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	for k, vv := range res.Header {
		for _, v := range vv {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(res.StatusCode)
	_, _ = io.Copy(w, res.Body)
}

// do sends a GET for path to h, with a bearer token unless token is "".
func do(h http.Handler, path, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// send sends a GET for /any to h with the Authorization header auth (none
// if "").
func send(h http.Handler, auth string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/any", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// subject answers 200 with the subject PrincipalFrom finds, or "-".
func subject(c fiber.Ctx) error {
	sub := "-"
	if p, ok := tgfiber.PrincipalFrom(c); ok {
		sub = p.Subject
	}
	return c.SendString(sub)
}

// nop is the net/http handler behind the core in comparisons.
var nop = http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

// forge breaks the signature of a JWT.
func forge(tok string) string { return tok[:len(tok)-4] + "AAAA" }

// challenge is the exact WWW-Authenticate g sends for an error code and
// description.
func challenge(g *tokenguard.Guard, code, desc string) string {
	return `Bearer realm="` + g.Resource() + `", error="` + code + `", error_description="` + desc +
		`", resource_metadata="` + g.ResourceMetadataURL() + `"`
}

// newReq is a request of method for path, with a bearer token unless token
// is "".
func newReq(method, path, token string) *http.Request {
	r := httptest.NewRequest(method, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// record sends r to h and returns the answer.
func record(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}
