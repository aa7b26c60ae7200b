package tgfiber

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/valyala/fasthttp"
)

// listen serves app on loopback until t ends and returns its address.
func listen(t *testing.T, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	t.Cleanup(func() {
		_ = app.ShutdownWithTimeout(5 * time.Second)
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// exchange writes raw, one or more requests, on one connection to addr and
// reads as many answers.
func exchange(t *testing.T, addr string, raw ...string) []*http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	var out []*http.Response
	for _, req := range raw {
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		out = append(out, res)
	}
	return out
}

// The request the core judges is the one the client sent, as net/http's
// server would have parsed it from the same bytes: method, request-target,
// path as sent (not as fasthttp normalises it for routing), query, Host,
// every header value of repeated fields in order, header names in
// canonical form, Content-Length and a body that reads what was sent.
func TestNewRequest(t *testing.T) {
	got := make(chan *http.Request, 1)
	bodies := make(chan string, 1)
	app := fiber.New()
	app.Use(func(c fiber.Ctx) error {
		r, body, err := newRequest(c)
		if err != nil {
			t.Error(err)
			return c.SendStatus(500)
		}
		b, _ := io.ReadAll(r.Body)
		body.detach()
		got <- r
		bodies <- string(b)
		return c.SendStatus(204)
	})
	addr := listen(t, app)

	raw := "POST /a/./b/..//c%2Fd?x=1&x=2 HTTP/1.1\r\n" +
		"Host: api.example:8443\r\n" +
		"Authorization: DPoP tok1\r\n" +
		"DPoP: proof-one\r\n" +
		"x-custom: lower\r\n" +
		"Authorization: Bearer tok2\r\n" +
		"DPoP: proof-two\r\n" +
		"Content-Type: application/x-www-form-urlencoded\r\n" +
		"Content-Length: 11\r\n" +
		"\r\n" +
		"a=1&b=2&c=3"
	if res := exchange(t, addr, raw); res[0].StatusCode != 204 {
		t.Fatalf("status %d", res[0].StatusCode)
	}
	r := <-got
	if r.Method != "POST" || r.RequestURI != "/a/./b/..//c%2Fd?x=1&x=2" || r.Host != "api.example:8443" {
		t.Errorf("method %q, request-target %q, host %q", r.Method, r.RequestURI, r.Host)
	}
	if r.URL.Path != "/a/./b/..//c/d" || r.URL.EscapedPath() != "/a/./b/..//c%2Fd" || r.URL.RawQuery != "x=1&x=2" {
		t.Errorf("path %q, escaped %q, query %q", r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery)
	}
	if r.Proto != "HTTP/1.1" || r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.ContentLength != 11 || r.TLS != nil {
		t.Errorf("proto %q %d.%d, content length %d, TLS %v", r.Proto, r.ProtoMajor, r.ProtoMinor, r.ContentLength, r.TLS)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err != nil || host != "127.0.0.1" {
		t.Errorf("RemoteAddr %q", r.RemoteAddr)
	}
	for key, want := range map[string][]string{
		"Authorization":  {"DPoP tok1", "Bearer tok2"},
		"Dpop":           {"proof-one", "proof-two"},
		"X-Custom":       {"lower"},
		"Content-Type":   {"application/x-www-form-urlencoded"},
		"Content-Length": {"11"},
	} {
		if got := r.Header[key]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
	if _, ok := r.Header["Host"]; ok {
		t.Error("Host in the header map; net/http has it in r.Host only")
	}
	if b := <-bodies; b != "a=1&b=2&c=3" {
		t.Errorf("body %q", b)
	}
}

// Appending to one value list never overwrites another's: repeated fields
// get lists of their own.
func TestNewRequestRepeatedFieldsAreSeparate(t *testing.T) {
	got := make(chan *http.Request, 1)
	app := fiber.New()
	app.Use(func(c fiber.Ctx) error {
		r, _, _ := newRequest(c)
		got <- r
		return c.SendStatus(204)
	})
	addr := listen(t, app)
	exchange(t, addr, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nA: 3\r\nC: 4\r\n\r\n")
	r := <-got
	r.Header["A"] = append(r.Header["A"], "5")
	r.Header["B"] = append(r.Header["B"], "6")
	if !reflect.DeepEqual(r.Header["A"], []string{"1", "3", "5"}) || !reflect.DeepEqual(r.Header["B"], []string{"2", "6"}) || !reflect.DeepEqual(r.Header["C"], []string{"4"}) {
		t.Errorf("%v", r.Header)
	}
}

// With Fiber's DisableHeaderNormalizing, fasthttp keeps header names as
// sent; the request still has them in canonical form, so the core finds
// "authorization" as Authorization.
func TestNewRequestUnnormalisedNames(t *testing.T) {
	got := make(chan *http.Request, 1)
	app := fiber.New(fiber.Config{DisableHeaderNormalizing: true})
	app.Use(func(c fiber.Ctx) error {
		r, _, _ := newRequest(c)
		got <- r
		return c.SendStatus(204)
	})
	addr := listen(t, app)
	exchange(t, addr, "GET / HTTP/1.1\r\nhost: h\r\nauthorization: Bearer x\r\nAUTHORIZATION: Bearer y\r\ndpop: p\r\n\r\n")
	r := <-got
	if got := r.Header.Values("Authorization"); !reflect.DeepEqual(got, []string{"Bearer x", "Bearer y"}) || r.Header.Get("DPoP") != "p" || r.Host != "h" {
		t.Errorf("%v, host %q", r.Header, r.Host)
	}
}

// The request holds copies: once fasthttp has reused its buffers for the
// next request on the connection, a request a hook kept still shows its own
// request-target and header values, and its body, detached, reads nothing
// of the next request.
func TestNewRequestOutlivesBuffers(t *testing.T) {
	var kept *http.Request
	app := fiber.New()
	app.Use(func(c fiber.Ctx) error {
		r, body, _ := newRequest(c)
		body.detach()
		if kept == nil {
			kept = r
		}
		return c.SendStatus(204)
	})
	addr := listen(t, app)
	exchange(t, addr,
		"POST /first HTTP/1.1\r\nHost: one\r\nX-Marker: first-value\r\nContent-Length: 5\r\n\r\nfirst",
		"POST /other HTTP/1.1\r\nHost: two\r\nX-Marker: other-value\r\nContent-Length: 5\r\n\r\nother")
	if kept.RequestURI != "/first" || kept.Host != "one" || kept.Header.Get("X-Marker") != "first-value" {
		t.Errorf("kept request shows %q %q %v", kept.RequestURI, kept.Host, kept.Header)
	}
	if b, err := io.ReadAll(kept.Body); err != nil || len(b) != 0 {
		t.Errorf("kept body read %q, %v", b, err)
	}
}

// An absolute-form request-target names the host, as in net/http.
func TestNewRequestAbsoluteForm(t *testing.T) {
	got := make(chan *http.Request, 1)
	app := fiber.New()
	app.Use(func(c fiber.Ctx) error {
		r, _, err := newRequest(c)
		if err != nil {
			t.Error(err)
		}
		got <- r
		return c.SendStatus(204)
	})
	addr := listen(t, app)
	exchange(t, addr, "GET https://api.example/any?q HTTP/1.1\r\nHost: other\r\n\r\n")
	r := <-got
	if r.Host != "api.example" || r.URL.Path != "/any" || r.URL.RawQuery != "q" || r.RequestURI != "https://api.example/any?q" {
		t.Errorf("host %q, path %q, query %q, request-target %q", r.Host, r.URL.Path, r.URL.RawQuery, r.RequestURI)
	}
}

func TestMethodAndProto(t *testing.T) {
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND"} {
		if got := method([]byte(m)); got != m {
			t.Errorf("method(%q) = %q", m, got)
		}
	}
	for in, want := range map[string][3]any{
		"HTTP/1.1": {"HTTP/1.1", 1, 1}, "HTTP/1.0": {"HTTP/1.0", 1, 0}, "HTTP/2.0": {"HTTP/2.0", 2, 0}, "junk": {"junk", 1, 1},
	} {
		p, major, minor := proto([]byte(in))
		if got := [3]any{p, major, minor}; got != want {
			t.Errorf("proto(%q) = %v, want %v", in, got, want)
		}
	}
	if !strings.HasPrefix(remoteAddr(&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 8}), "10.0.0.1:8") ||
		remoteAddr(&net.TCPAddr{IP: net.ParseIP("::1"), Port: 9}) != "[::1]:9" || remoteAddr(nil) != "" {
		t.Error("remoteAddr")
	}
}

// The conversion alone, for a typical API request.
func BenchmarkNewRequest(b *testing.B) {
	raw := "GET /orders/42?expand=items HTTP/1.1\r\nHost: api.example\r\nUser-Agent: bench/1.0\r\n" +
		"Accept: application/json\r\nAccept-Encoding: gzip\r\nX-Request-Id: 0f6c2a9e-5d1b-4c8e-9a3f-7b2d1e4c6a80\r\n" +
		"Authorization: Bearer " + strings.Repeat("x", 700) + "\r\n\r\n"
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		b.Fatal(err)
	}
	var fctx fasthttp.RequestCtx
	fctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}, nil)
	app := fiber.New()
	c := app.AcquireCtx(&fctx)
	defer app.ReleaseCtx(c)
	b.ReportAllocs()
	for b.Loop() {
		r, body, err := newRequest(c)
		if err != nil || r.Header.Get("Authorization") == "" {
			b.Fatal(err)
		}
		body.detach()
	}
}
