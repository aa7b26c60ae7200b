package introspect_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/internal/fetch"
	"github.com/tokenguard/tokenguard/introspect"
)

func TestUpstreamFailures(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
		wantRetry  time.Duration
		wantCreds  bool
		wantIs     error
	}{
		{name: "401", handler: jsonReply(401, `{"error":"invalid_client"}`), wantStatus: 401, wantCreds: true},
		{name: "403", handler: jsonReply(403, `{"error":"access_denied"}`), wantStatus: 403, wantCreds: true},
		{name: "429 with Retry-After", wantStatus: 429, wantRetry: 7 * time.Second,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				jsonReply(429, `{"error":"rate_limited"}`)(w, r)
			}},
		{name: "503 with an HTTP-date Retry-After", wantStatus: 503, wantRetry: 2 * time.Minute,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", now.Add(2*time.Minute).UTC().Format(http.TimeFormat))
				w.WriteHeader(503)
			}},
		{name: "500", handler: jsonReply(500, `{"error":"server_error"}`), wantStatus: 500},
		{name: "502 with HTML", wantStatus: 502,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(502)
				fmt.Fprint(w, "<html><body>Bad Gateway</body></html>")
			}},
		{name: "404", handler: http.NotFound, wantStatus: 404},
		{name: "400 echoing the token", wantStatus: 400,
			handler: func(w http.ResponseWriter, r *http.Request) {
				jsonReply(400, `{"error":"invalid_request","error_description":"bad token `+r.PostFormValue("token")+`"}`)(w, r)
			}},
		{name: "redirect is not followed", wantStatus: 307,
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					jsonReply(200, `{"active":true}`)(w, r)
					return
				}
				http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			}},
		{name: "oversized with Content-Length", wantStatus: 200, wantIs: fetch.ErrTooLarge,
			handler: func(w http.ResponseWriter, r *http.Request) {
				jsonReply(200, `{"active":true,"pad":"`+strings.Repeat("x", 1024)+`"}`)(w, r)
			}},
		{name: "oversized, chunked", wantStatus: 200, wantIs: fetch.ErrTooLarge,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"active":true,"pad":"`)
				w.(http.Flusher).Flush() // no Content-Length from here on
				fmt.Fprint(w, strings.Repeat("x", 1024)+`"}`)
			}},
		{name: "trailing data", wantStatus: 200, wantIs: introspect.ErrBadResponse,
			handler: jsonReply(200, `{"active":true}]`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t, tc.handler)
			c := newClient(t, introspect.Config{Endpoint: srv.URL + "/oauth/introspect", ClientID: "rs", ClientSecret: "s", MaxBytes: 1024})
			_, err := call(t, c)
			ue := wantUpstream(t, err)
			if ue.StatusCode != tc.wantStatus {
				t.Errorf("StatusCode = %d, want %d (%v)", ue.StatusCode, tc.wantStatus, err)
			}
			if ue.RetryAfter != tc.wantRetry {
				t.Errorf("RetryAfter = %s, want %s", ue.RetryAfter, tc.wantRetry)
			}
			if got := errors.Is(err, introspect.ErrCredentialsRejected); got != tc.wantCreds {
				t.Errorf("errors.Is(err, ErrCredentialsRejected) = %v, want %v (%v)", got, tc.wantCreds, err)
			}
			if tc.wantCreds && !strings.Contains(err.Error(), "introspection credentials rejected") {
				t.Errorf("err = %q, want the operator message", err)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.wantIs)
			}
		})
	}
}

// A body of exactly MaxBytes is accepted: the cap is not off by one.
func TestMaxBytesBoundary(t *testing.T) {
	const max = 256
	head, tail := `{"active":true,"pad":"`, `"}`
	body := head + strings.Repeat("x", max-len(head)-len(tail)) + tail
	srv := server(t, jsonReply(200, body))
	if _, err := call(t, newClient(t, introspect.Config{Endpoint: srv.URL, MaxBytes: max})); err != nil {
		t.Fatalf("body of exactly MaxBytes: %v", err)
	}
	srv2 := server(t, jsonReply(200, body+" "))
	_, err := call(t, newClient(t, introspect.Config{Endpoint: srv2.URL, MaxBytes: max}))
	if wantUpstream(t, err); !errors.Is(err, fetch.ErrTooLarge) {
		t.Errorf("body of MaxBytes+1: err = %v, want ErrTooLarge", err)
	}
}

func TestDefaultMaxBytes(t *testing.T) {
	srv := server(t, jsonReply(200, `{"active":true,"pad":"`+strings.Repeat("x", 64<<10)+`"}`))
	_, err := call(t, newClient(t, introspect.Config{Endpoint: srv.URL}))
	if wantUpstream(t, err); !errors.Is(err, fetch.ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge past the 64 KiB default", err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	c := newClient(t, introspect.Config{Endpoint: srv.URL, Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := call(t, c)
	elapsed := time.Since(start)
	ue := wantUpstream(t, err)
	if !errors.Is(err, context.DeadlineExceeded) || ue.StatusCode != 0 {
		t.Errorf("err = %v (status %d), want a deadline with no status", err, ue.StatusCode)
	}
	if elapsed < 100*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("returned after %s, want about 100ms", elapsed)
	}
}

// A body that stalls after the headers is bounded by the same Timeout.
func TestTimeoutDuringBody(t *testing.T) {
	release := make(chan struct{})
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"active":`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	c := newClient(t, introspect.Config{Endpoint: srv.URL, Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := call(t, c)
	wantUpstream(t, err)
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("returned after %s, want about 100ms", elapsed)
	}
}

func TestCallerContextCanceled(t *testing.T) {
	release := make(chan struct{})
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	c := newClient(t, introspect.Config{Endpoint: srv.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := callCtx(t, ctx, c)
	if wantUpstream(t, err); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the caller's deadline", err)
	}
}

func TestServerDown(t *testing.T) {
	srv := server(t, jsonReply(200, `{"active":true}`))
	url := srv.URL
	srv.Close()
	_, err := call(t, newClient(t, introspect.Config{Endpoint: url}))
	if ue := wantUpstream(t, err); ue.StatusCode != 0 || ue.RetryAfter != 0 {
		t.Errorf("StatusCode = %d, RetryAfter = %s, want 0, 0", ue.StatusCode, ue.RetryAfter)
	}
}

// The client is safe for concurrent use and keeps nothing between calls.
func TestConcurrentCallsNoCaching(t *testing.T) {
	var n counter
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		n.record(r)
		jsonReply(200, `{"active":true}`)(w, r)
	})
	c := newClient(t, introspect.Config{Endpoint: srv.URL})
	done := make(chan error)
	for range 20 {
		go func() {
			_, err := c.Introspect(context.Background(), secretToken)
			done <- err
		}()
	}
	for range 20 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if got := n.n.Load(); got != 20 {
		t.Errorf("%d requests reached the endpoint, want 20 (no caching here)", got)
	}
}

func TestErrorStrings(t *testing.T) {
	te := &introspect.TokenError{Reason: "token expired", Detail: "exp 2023-11-14T22:13:20Z"}
	if got, want := te.Error(), "introspect: token rejected: token expired (exp 2023-11-14T22:13:20Z)"; got != want {
		t.Errorf("TokenError = %q, want %q", got, want)
	}
	ue := &introspect.UpstreamError{StatusCode: 401, Err: fmt.Errorf("%w: POST https://as.example/introspect: status 401", introspect.ErrCredentialsRejected)}
	if got, want := ue.Error(), "introspect: introspection credentials rejected: POST https://as.example/introspect: status 401"; got != want {
		t.Errorf("UpstreamError = %q, want %q", got, want)
	}
	if got := (&introspect.UpstreamError{}).Error(); got != "introspect: introspection failed" {
		t.Errorf("empty UpstreamError = %q", got)
	}
}
