package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// helpers

// newServer starts a plain HTTP test server on 127.0.0.1 that is closed when
// the test ends.
func newServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newTLSServer is newServer over TLS; srv.Client() trusts its certificate.
func newTLSServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// releaseChan returns a channel that is closed when the test ends, before the
// servers started earlier in the test are closed (cleanups run LIFO), so a
// handler blocked on it never holds up httptest.Server.Close.
func releaseChan(t *testing.T) chan struct{} {
	t.Helper()
	ch := make(chan struct{})
	t.Cleanup(func() { close(ch) })
	return ch
}

// block waits until the client goes away or the test ends. The cap keeps a
// broken implementation (one with no deadline) from hanging the suite: the
// test then fails on what Get returned instead.
func block(r *http.Request, release <-chan struct{}) {
	select {
	case <-r.Context().Done():
	case <-release:
	case <-time.After(10 * time.Second):
	}
}

func writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, body)
}

// insecure is the Options most tests against plain httptest servers use.
func insecure() Options { return Options{AllowInsecure: true, Timeout: 5 * time.Second} }

// ---------------------------------------------------------------------------
// CheckURL

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name          string
		raw           string
		allowInsecure bool
		wantErr       bool
		wantInsecure  bool   // errors.Is(err, ErrInsecureURL)
		wantHost      string // checked when !wantErr
	}{
		{name: "https", raw: "https://as.example/.well-known/openid-configuration", wantHost: "as.example"},
		{name: "https with insecure opt-in", raw: "https://as.example/", allowInsecure: true, wantHost: "as.example"},
		{name: "https port and query", raw: "https://127.0.0.1:8443/jwks?x=1", wantHost: "127.0.0.1:8443"},
		{name: "https upper-case scheme", raw: "HTTPS://as.example/", wantHost: "as.example"},
		{name: "http refused by default", raw: "http://as.example/", wantErr: true, wantInsecure: true},
		{name: "http accepted with opt-in", raw: "http://as.example/", allowInsecure: true, wantHost: "as.example"},
		{name: "ftp refused even with opt-in", raw: "ftp://as.example/f", allowInsecure: true, wantErr: true, wantInsecure: true},
		{name: "file refused even with opt-in", raw: "file:///etc/passwd", allowInsecure: true, wantErr: true},
		{name: "file with host refused even with opt-in", raw: "file://as.example/etc/passwd", allowInsecure: true, wantErr: true, wantInsecure: true},
		{name: "javascript refused even with opt-in", raw: "javascript:alert(1)", allowInsecure: true, wantErr: true},
		{name: "relative path", raw: "/.well-known/jwks.json", allowInsecure: true, wantErr: true},
		{name: "relative name", raw: "jwks.json", allowInsecure: true, wantErr: true},
		{name: "scheme-relative", raw: "//as.example/jwks", allowInsecure: true, wantErr: true},
		{name: "empty", raw: "", allowInsecure: true, wantErr: true},
		{name: "no host", raw: "https:///jwks", wantErr: true},
		{name: "scheme only", raw: "https://", wantErr: true},
		{name: "user and password", raw: "https://user:pw@as.example/", wantErr: true},
		{name: "user only", raw: "https://user@as.example/", wantErr: true},
		{name: "empty user info", raw: "https://@as.example/", wantErr: true},
		{name: "fragment", raw: "https://as.example/jwks#frag", wantErr: true},
		{name: "empty fragment", raw: "https://h/#", wantErr: true},
		{name: "opaque", raw: "https:foo", wantErr: true},
		{name: "opaque with opt-in", raw: "http:foo", allowInsecure: true, wantErr: true},
		{name: "bad escape", raw: "https://as.example/%zz", wantErr: true},
		{name: "control character", raw: "https://as.example/\x7f", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := CheckURL(tc.raw, tc.allowInsecure)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("CheckURL(%q, %v) = %v, nil; want error", tc.raw, tc.allowInsecure, u)
				}
				if u != nil {
					t.Errorf("CheckURL(%q) returned URL %v along with error", tc.raw, u)
				}
				if tc.wantInsecure && !errors.Is(err, ErrInsecureURL) {
					t.Errorf("CheckURL(%q) error %v; want errors.Is ErrInsecureURL", tc.raw, err)
				}
				if !strings.Contains(err.Error(), "URL") {
					t.Errorf("error %q does not name the URL", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckURL(%q, %v): %v", tc.raw, tc.allowInsecure, err)
			}
			if u == nil || u.Host != tc.wantHost {
				t.Fatalf("CheckURL(%q) = %v; want host %q", tc.raw, u, tc.wantHost)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Get: success, headers, Accept

func TestGetOK(t *testing.T) {
	tests := []struct {
		name       string
		accept     string // Options.Accept
		wantAccept string // what the server must see
	}{
		{name: "default Accept", accept: "", wantAccept: "application/json"},
		{name: "configured Accept", accept: "application/jwk-set+json, application/json", wantAccept: "application/jwk-set+json, application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var gotAccept, gotMethod string
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				gotAccept, gotMethod = r.Header.Get("Accept"), r.Method
				mu.Unlock()
				w.Header().Set("Cache-Control", "max-age=60")
				w.Header().Set("X-Test", "yes")
				writeJSON(w, `{"keys":[]}`)
			})
			o := insecure()
			o.Accept = tc.accept
			resp, err := Get(context.Background(), srv.URL+"/jwks", o)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(resp.Body) != `{"keys":[]}` {
				t.Errorf("body = %q", resp.Body)
			}
			if got := resp.Header.Get("Cache-Control"); got != "max-age=60" {
				t.Errorf("Cache-Control = %q", got)
			}
			if got := resp.Header.Get("X-Test"); got != "yes" {
				t.Errorf("X-Test = %q", got)
			}
			mu.Lock()
			defer mu.Unlock()
			if gotMethod != http.MethodGet {
				t.Errorf("method = %q; want GET", gotMethod)
			}
			if gotAccept != tc.wantAccept {
				t.Errorf("Accept sent = %q; want %q", gotAccept, tc.wantAccept)
			}
		})
	}
}

func TestGetRefusesURLBeforeRequest(t *testing.T) {
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, `{}`)
	})
	// http without the opt-in: refused without a request.
	_, err := Get(context.Background(), srv.URL+"/jwks", Options{})
	if !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("Get(http, no opt-in) error = %v; want ErrInsecureURL", err)
	}
	// A fragment is refused even with the opt-in.
	if _, err := Get(context.Background(), srv.URL+"/jwks#x", insecure()); err == nil {
		t.Fatal("Get with fragment succeeded")
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("server got %d requests; want 0", n)
	}
}

// ---------------------------------------------------------------------------
// Get: status codes and Retry-After

func TestGetStatus(t *testing.T) {
	tests := []struct {
		name       string
		code       int
		retryAfter func() string // nil: header absent
		ctype      string
		body       string
		wantMin    time.Duration // RetryAfter bounds, inclusive
		wantMax    time.Duration
	}{
		{name: "404 no Retry-After", code: http.StatusNotFound},
		{name: "429 seconds", code: http.StatusTooManyRequests, retryAfter: func() string { return "120" }, wantMin: 120 * time.Second, wantMax: 120 * time.Second},
		{name: "503 HTTP-date", code: http.StatusServiceUnavailable,
			retryAfter: func() string { return time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat) },
			// Second resolution of the date plus scheduling slack.
			wantMin: 100 * time.Second, wantMax: 2 * time.Minute},
		{name: "503 invalid Retry-After", code: http.StatusServiceUnavailable, retryAfter: func() string { return "soon" }},
		{name: "500 HTML page", code: http.StatusInternalServerError, ctype: "text/html", body: "<html>oops</html>"},
		{name: "204 no content", code: http.StatusNoContent},
		{name: "201 created", code: http.StatusCreated, ctype: "application/json", body: "{}"},
		{name: "302 without Location", code: http.StatusFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != nil {
					w.Header().Set("Retry-After", tc.retryAfter())
				}
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				w.WriteHeader(tc.code)
				_, _ = io.WriteString(w, tc.body)
			})
			url := srv.URL + "/meta"
			resp, err := Get(context.Background(), url, insecure())
			if err == nil {
				t.Fatalf("Get succeeded with status %d: %+v", tc.code, resp)
			}
			if resp != nil {
				t.Errorf("non-nil response with error")
			}
			if !errors.Is(err, ErrStatus) {
				t.Errorf("errors.Is(err, ErrStatus) = false for %v", err)
			}
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v is not a *StatusError", err, err)
			}
			if se.StatusCode != tc.code {
				t.Errorf("StatusCode = %d; want %d", se.StatusCode, tc.code)
			}
			if se.URL != url {
				t.Errorf("URL = %q; want %q", se.URL, url)
			}
			if se.RetryAfter < tc.wantMin || se.RetryAfter > tc.wantMax {
				t.Errorf("RetryAfter = %v; want in [%v, %v]", se.RetryAfter, tc.wantMin, tc.wantMax)
			}
			if msg := err.Error(); !strings.Contains(msg, url) || !strings.Contains(msg, strconv.Itoa(tc.code)) {
				t.Errorf("error %q does not name URL and status", msg)
			}
		})
	}
}

func TestStatusErrorIs(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &StatusError{URL: "https://h/", StatusCode: 500})
	if !errors.Is(err, ErrStatus) {
		t.Error("wrapped StatusError is not ErrStatus")
	}
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrInsecureURL) {
		t.Error("StatusError matches an unrelated sentinel")
	}
}

// ---------------------------------------------------------------------------
// Get: content type

func TestGetContentType(t *testing.T) {
	const absent = "\x00absent"
	tests := []struct {
		ctype  string
		wantOK bool
	}{
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"Application/JSON", true},
		{"application/jwk-set+json", true},
		{"application/problem+json", true},
		{"application/vnd.example+json; v=2", true},
		{absent, true},
		{"text/html", false},
		{"text/html; charset=utf-8", false},
		{"text/plain", false},
		{"application/xml", false},
		{"application/json-seq", false},
		{"application/jsonx", false},
		{"text/json+html", false},
		{"application/json; charset", false}, // malformed parameter
		{"/json", false},                     // malformed media type
	}
	for _, tc := range tests {
		t.Run(tc.ctype, func(t *testing.T) {
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype == absent {
					// nil suppresses the server's content sniffing.
					w.Header()["Content-Type"] = nil
				} else {
					w.Header().Set("Content-Type", tc.ctype)
				}
				_, _ = io.WriteString(w, `{"a":1}`)
			})
			resp, err := Get(context.Background(), srv.URL, insecure())
			if tc.wantOK {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if string(resp.Body) != `{"a":1}` {
					t.Errorf("body = %q", resp.Body)
				}
				if tc.ctype == absent && resp.Header.Get("Content-Type") != "" {
					t.Fatalf("test server sent Content-Type %q; the case is not exercised", resp.Header.Get("Content-Type"))
				}
				return
			}
			if err == nil {
				t.Fatalf("Get accepted Content-Type %q", tc.ctype)
			}
			if errors.Is(err, ErrStatus) {
				t.Errorf("content-type error is a status error: %v", err)
			}
			if !strings.Contains(err.Error(), "not JSON") {
				t.Errorf("error %q does not say the type is not JSON", err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Get: size cap

func TestGetSize(t *testing.T) {
	const capBytes = 64
	type shape int
	const (
		withLength shape = iota // Content-Length set, body written at once
		chunked                 // no Content-Length, flushed in pieces
	)
	tests := []struct {
		name     string
		maxBytes int64
		size     int
		shape    shape
		wantErr  bool
	}{
		{name: "exactly max, Content-Length", maxBytes: capBytes, size: capBytes, shape: withLength},
		{name: "exactly max, chunked", maxBytes: capBytes, size: capBytes, shape: chunked},
		{name: "max+1, Content-Length", maxBytes: capBytes, size: capBytes + 1, shape: withLength, wantErr: true},
		{name: "max+1, chunked", maxBytes: capBytes, size: capBytes + 1, shape: chunked, wantErr: true},
		{name: "far over, chunked", maxBytes: capBytes, size: 100 * capBytes, shape: chunked, wantErr: true},
		{name: "empty body", maxBytes: capBytes, size: 0, shape: withLength},
		{name: "default cap, exactly 1 MiB", size: 1 << 20, shape: chunked},
		{name: "default cap, 1 MiB + 1", size: 1<<20 + 1, shape: chunked, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("a"), tc.size)
			srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch tc.shape {
				case withLength:
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					_, _ = w.Write(body)
				case chunked:
					rc := http.NewResponseController(w)
					step := max(16, len(body)/32) // several chunks, not thousands
					for rest := body; len(rest) > 0; {
						n := min(len(rest), step)
						if _, err := w.Write(rest[:n]); err != nil {
							return
						}
						if err := rc.Flush(); err != nil {
							return
						}
						rest = rest[n:]
					}
				}
			})
			o := insecure()
			o.MaxBytes = tc.maxBytes
			resp, err := Get(context.Background(), srv.URL, o)
			if tc.wantErr {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("Get error = %v; want ErrTooLarge", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !bytes.Equal(resp.Body, body) {
				t.Fatalf("body has %d bytes; want %d", len(resp.Body), len(body))
			}
		})
	}
}

// A declared Content-Length over the cap is refused from the header alone:
// the server sends a few bytes and then stalls, so an implementation that
// read the body first would sit there until the timeout and fail with a
// deadline error instead of ErrTooLarge.
func TestGetContentLengthRefusedBeforeReading(t *testing.T) {
	release := releaseChan(t)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1000")
		_, _ = io.WriteString(w, `{"a":`)
		_ = http.NewResponseController(w).Flush()
		block(r, release)
	})
	o := insecure()
	o.MaxBytes = 100
	o.Timeout = 5 * time.Second
	start := time.Now()
	_, err := Get(context.Background(), srv.URL, o)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Get error = %v; want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "Content-Length") {
		t.Errorf("error %q does not mention Content-Length", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Get took %v; the body was read", d)
	}
}

// An endless body is cut off at the cap rather than read to the end.
func TestGetEndlessBodyStopsAtCap(t *testing.T) {
	release := releaseChan(t)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		rc := http.NewResponseController(w)
		chunk := bytes.Repeat([]byte(" "), 4096)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-release:
				return
			default:
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	})
	o := insecure()
	o.MaxBytes = 10000
	_, err := Get(context.Background(), srv.URL, o)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Get error = %v; want ErrTooLarge", err)
	}
}

// ---------------------------------------------------------------------------
// Get: deadlines and cancellation

func TestGetTimeout(t *testing.T) {
	tests := []struct {
		name    string
		handler func(release <-chan struct{}) http.HandlerFunc
	}{
		{
			name: "no headers",
			handler: func(release <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { block(r, release) }
			},
		},
		{
			// Timeout bounds the body too, not just the headers.
			name: "stalled body",
			handler: func(release <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					_, _ = io.WriteString(w, `{"keys":[`)
					_ = http.NewResponseController(w).Flush()
					block(r, release)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			release := releaseChan(t)
			srv := newServer(t, tc.handler(release))
			o := insecure()
			o.Timeout = 100 * time.Millisecond
			start := time.Now()
			_, err := Get(context.Background(), srv.URL, o)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("Get succeeded against a stalled server")
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
			}
			if elapsed > 2*time.Second {
				t.Errorf("Get took %v with a 100ms timeout", elapsed)
			}
			if !strings.Contains(err.Error(), srv.URL) {
				t.Errorf("error %q does not name the URL", err)
			}
		})
	}
}

func TestGetCallerCancel(t *testing.T) {
	release := releaseChan(t)
	started := make(chan struct{}, 1)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		block(r, release)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-started
		cancel()
	}()
	o := insecure()
	o.Timeout = 30 * time.Second
	start := time.Now()
	_, err := Get(ctx, srv.URL, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Get error = %v; want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Get took %v after cancellation", d)
	}
}

func TestGetAlreadyCancelled(t *testing.T) {
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, `{}`)
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Get(ctx, srv.URL, insecure())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Get error = %v; want context.Canceled", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server got %d requests with a cancelled context", n)
	}
}

// ---------------------------------------------------------------------------
// Get: redirects

// An https URL must not be redirected to plain http, and the plain server
// must not see a single request.
func TestGetRedirectHTTPSToHTTPRefused(t *testing.T) {
	var plainHits atomic.Int32
	plain := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		writeJSON(w, `{"keys":[]}`)
	})
	tlsSrv := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+"/jwks", http.StatusFound)
	})
	_, err := Get(context.Background(), tlsSrv.URL+"/jwks", Options{Client: tlsSrv.Client(), Timeout: 5 * time.Second})
	if !errors.Is(err, ErrInsecureURL) {
		t.Fatalf("Get error = %v; want ErrInsecureURL", err)
	}
	if n := plainHits.Load(); n != 0 {
		t.Fatalf("plain http server got %d requests; want 0", n)
	}
}

func TestGetRedirects(t *testing.T) {
	var finalHits atomic.Int32
	var srv *httptest.Server
	srv = newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/final":
			finalHits.Add(1)
			writeJSON(w, `{"final":true}`)
		case r.URL.Path == "/to-final":
			http.Redirect(w, r, "/final", http.StatusFound)
		case r.URL.Path == "/to-final-fragment":
			// A fragment on a Location is legitimate; it is not sent.
			http.Redirect(w, r, "/final#section", http.StatusMovedPermanently)
		case r.URL.Path == "/to-userinfo":
			w.Header().Set("Location", strings.Replace(srv.URL, "http://", "http://user:pw@", 1)+"/final")
			w.WriteHeader(http.StatusFound)
		case r.URL.Path == "/to-ftp":
			w.Header().Set("Location", "ftp://127.0.0.1/final")
			w.WriteHeader(http.StatusFound)
		case r.URL.Path == "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/chain/"):
			n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/chain/"))
			if n == 0 {
				http.Redirect(w, r, "/final", http.StatusFound)
				return
			}
			http.Redirect(w, r, "/chain/"+strconv.Itoa(n-1), http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	})
	tests := []struct {
		name          string
		path          string
		allowInsecure bool
		wantErr       bool
		wantInsecure  bool
		wantMsg       string
		wantFinal     int32
	}{
		{name: "http to http followed with opt-in", path: "/to-final", allowInsecure: true, wantFinal: 1},
		{name: "fragment on Location stripped", path: "/to-final-fragment", allowInsecure: true, wantFinal: 1},
		{name: "user info in Location refused", path: "/to-userinfo", allowInsecure: true, wantErr: true},
		{name: "ftp Location refused", path: "/to-ftp", allowInsecure: true, wantErr: true, wantInsecure: true},
		// Same budget as net/http's default policy: 10 requests in all.
		{name: "9 redirects followed", path: "/chain/8", allowInsecure: true, wantFinal: 1},
		{name: "10 redirects stop", path: "/chain/9", allowInsecure: true, wantErr: true, wantMsg: "stopped after 10 redirects"},
		{name: "endless loop stops", path: "/loop", allowInsecure: true, wantErr: true, wantMsg: "stopped after 10 redirects"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			finalHits.Store(0)
			o := insecure()
			o.AllowInsecure = tc.allowInsecure
			resp, err := Get(context.Background(), srv.URL+tc.path, o)
			if got := finalHits.Load(); got != tc.wantFinal {
				t.Errorf("final endpoint got %d requests; want %d", got, tc.wantFinal)
			}
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Get succeeded: %q", resp.Body)
				}
				if tc.wantInsecure && !errors.Is(err, ErrInsecureURL) {
					t.Errorf("error %v is not ErrInsecureURL", err)
				}
				if tc.wantMsg != "" && !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("error %q does not contain %q", err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(resp.Body) != `{"final":true}` {
				t.Errorf("body = %q", resp.Body)
			}
		})
	}
}

func TestGetLoopCountsRequests(t *testing.T) {
	var hits atomic.Int32
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	if _, err := Get(context.Background(), srv.URL+"/loop", insecure()); err == nil {
		t.Fatal("endless redirect loop succeeded")
	}
	if n := hits.Load(); n != 10 {
		t.Fatalf("server got %d requests; want 10", n)
	}
}

func TestGetCallerCheckRedirect(t *testing.T) {
	errCaller := errors.New("caller policy says no")
	plain := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/final" {
			writeJSON(w, `{}`)
			return
		}
		http.Redirect(w, r, "/final", http.StatusFound)
	})

	t.Run("runs and its error is returned", func(t *testing.T) {
		var calls atomic.Int32
		client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
			calls.Add(1)
			return errCaller
		}}
		o := insecure()
		o.Client = client
		_, err := Get(context.Background(), plain.URL+"/start", o)
		if !errors.Is(err, errCaller) {
			t.Fatalf("Get error = %v; want the caller's error", err)
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("caller's CheckRedirect ran %d times; want 1", n)
		}
	})

	t.Run("ErrUseLastResponse honoured", func(t *testing.T) {
		client := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return http.ErrUseLastResponse
		}}
		o := insecure()
		o.Client = client
		_, err := Get(context.Background(), plain.URL+"/start", o)
		var se *StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusFound {
			t.Fatalf("Get error = %v; want StatusError 302", err)
		}
	})

	t.Run("permissive caller policy does not bypass ours", func(t *testing.T) {
		var calls, plainHits atomic.Int32
		target := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			plainHits.Add(1)
			writeJSON(w, `{}`)
		})
		tlsSrv := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/jwks", http.StatusFound)
		})
		client := tlsSrv.Client()
		client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			calls.Add(1)
			return nil
		}
		_, err := Get(context.Background(), tlsSrv.URL, Options{Client: client, Timeout: 5 * time.Second})
		if !errors.Is(err, ErrInsecureURL) {
			t.Fatalf("Get error = %v; want ErrInsecureURL", err)
		}
		if n := calls.Load(); n != 0 {
			t.Errorf("caller's CheckRedirect ran %d times; ours must refuse first", n)
		}
		if n := plainHits.Load(); n != 0 {
			t.Errorf("plain server got %d requests; want 0", n)
		}
	})
}

func TestGetDoesNotMutateClient(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/final" {
			writeJSON(w, `{}`)
			return
		}
		http.Redirect(w, r, "/final", http.StatusFound)
	})

	t.Run("nil CheckRedirect", func(t *testing.T) {
		client := &http.Client{Timeout: 7 * time.Second}
		o := insecure()
		o.Client = client
		if _, err := Get(context.Background(), srv.URL+"/start", o); err != nil {
			t.Fatalf("Get: %v", err)
		}
		if client.CheckRedirect != nil {
			t.Fatal("Get set CheckRedirect on the caller's client")
		}
		if client.Timeout != 7*time.Second || client.Transport != nil || client.Jar != nil {
			t.Fatalf("caller's client changed: %+v", client)
		}
	})

	t.Run("own CheckRedirect", func(t *testing.T) {
		policy := func(req *http.Request, via []*http.Request) error { return nil }
		client := &http.Client{CheckRedirect: policy}
		o := insecure()
		o.Client = client
		if _, err := Get(context.Background(), srv.URL+"/start", o); err != nil {
			t.Fatalf("Get: %v", err)
		}
		if reflect.ValueOf(client.CheckRedirect).Pointer() != reflect.ValueOf(policy).Pointer() {
			t.Fatal("Get replaced the caller's CheckRedirect")
		}
	})

	t.Run("nil Client leaves http.DefaultClient alone", func(t *testing.T) {
		before := *http.DefaultClient
		if _, err := Get(context.Background(), srv.URL+"/start", insecure()); err != nil {
			t.Fatalf("Get: %v", err)
		}
		if http.DefaultClient.CheckRedirect != nil {
			t.Fatal("Get set http.DefaultClient.CheckRedirect")
		}
		if http.DefaultClient.Timeout != before.Timeout || http.DefaultClient.Transport != before.Transport {
			t.Fatal("Get changed http.DefaultClient")
		}
	})

	// One client shared by concurrent fetches: the race detector flags any
	// write to it.
	t.Run("shared concurrently", func(t *testing.T) {
		client := &http.Client{}
		o := insecure()
		o.Client = client
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := Get(context.Background(), srv.URL+"/start", o)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// ParseRetryAfter

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    string
		want time.Duration
	}{
		{"empty", "", 0},
		{"blank", "   ", 0},
		{"zero", "0", 0},
		{"seconds", "120", 120 * time.Second},
		{"one", "1", time.Second},
		{"negative", "-5", 0},
		{"surrounding space", " 7 ", 7 * time.Second},
		{"leading zeros", "007", 7 * time.Second}, // delay-seconds = 1*DIGIT
		{"plus sign", "+5", 0},
		{"fraction", "1.5", 0},
		{"exponent", "1e3", 0},
		{"hex", "0x10", 0},
		{"trailing junk", "12abc", 0},
		{"inner space", "1 2", 0},
		{"letters", "abc", 0},
		{"largest representable", "9223372036", 9223372036 * time.Second},
		{"overflows Duration", "9223372037", 0},
		{"overflows Duration by far", "9999999999", 0},
		{"overflows int64", "99999999999999999999", 0},
		{"date in future", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"date in past", now.Add(-90 * time.Second).Format(http.TimeFormat), 0},
		{"date now", now.Format(http.TimeFormat), 0},
		{"date RFC 850", now.Add(time.Hour).Format(time.RFC850), time.Hour},
		{"date ANSI C", now.Add(time.Minute).Format(time.ANSIC), time.Minute},
		{"date with space", "  " + now.Add(time.Minute).Format(http.TimeFormat) + " ", time.Minute},
		{"date garbage", "Sun, 99 Foo 2025 99:99:99 GMT", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseRetryAfter(tc.v, now); got != tc.want {
				t.Errorf("ParseRetryAfter(%q) = %v; want %v", tc.v, got, tc.want)
			}
		})
	}
}
