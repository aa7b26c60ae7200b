package oauthtest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestStartTLS(t *testing.T) {
	srv := oauthtest.NewUnstartedServer(oauthtest.Options{Algorithms: []string{"EdDSA"}, IssuerPath: "/t"})
	srv.StartTLS()
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") || srv.Issuer != srv.URL+"/t" || srv.Resource() != srv.URL+"/api" {
		t.Fatalf("URL %q Issuer %q Resource %q", srv.URL, srv.Issuer, srv.Resource())
	}
	doc := getDoc(t, srv, srv.ServerMetadataURL())
	if doc["jwks_uri"] != srv.JWKSURL() || !strings.HasPrefix(srv.JWKSURL(), "https://") {
		t.Errorf("metadata %v", doc)
	}
	verifyToken(t, srv, srv.Mint(nil), "EdDSA")
}

func TestUnstartedServer(t *testing.T) {
	srv := oauthtest.NewUnstartedServer(oauthtest.Options{Algorithms: []string{"EdDSA"}})
	defer srv.Close()
	if srv.URL != "" || srv.Issuer != "" || srv.Resource() != "" {
		t.Errorf("before Start: URL %q Issuer %q Resource %q", srv.URL, srv.Issuer, srv.Resource())
	}
	// Set-up before Start is allowed.
	srv.RegisterClient("svc", "pw", "read")
	srv.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{Status: 500, Times: 1})
	kid := srv.RotateKey("EdDSA")
	srv.Start()
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") || srv.Issuer != srv.URL {
		t.Fatalf("URL %q Issuer %q", srv.URL, srv.Issuer)
	}
	if status, _, _ := get(t, srv, srv.JWKSURL()); status != 500 {
		t.Errorf("fault set before Start: status %d", status)
	}
	if h, _ := verifyToken(t, srv, srv.Mint(nil), "EdDSA"); h["kid"] != kid {
		t.Errorf("kid %v, want %s", h["kid"], kid)
	}
	if r := postToken(t, srv, url.Values{"grant_type": {"client_credentials"}}, []string{"svc", "pw"}); r.status != 200 {
		t.Errorf("token: %d %v", r.status, r.body)
	}
	mustPanic(t, "already started", srv.Start)
	mustPanic(t, "already started", srv.StartTLS)
}

func TestInvalidOptionsPanic(t *testing.T) {
	tests := []struct {
		name string
		opts oauthtest.Options
		want string
	}{
		{"unsupported alg", oauthtest.Options{Algorithms: []string{"HS256"}}, `unsupported algorithm "HS256"`},
		{"empty alg", oauthtest.Options{Algorithms: []string{""}}, "unsupported algorithm"},
		{"duplicate alg", oauthtest.Options{Algorithms: []string{"EdDSA", "EdDSA"}}, "listed twice"},
		{"relative prefix", oauthtest.Options{Prefix: "oauth"}, "Prefix"},
		{"relative issuer path", oauthtest.Options{IssuerPath: "tenant"}, "IssuerPath"},
		{"issuer path with query", oauthtest.Options{IssuerPath: "/t?x=1"}, "IssuerPath"},
		{"resource not a URL", oauthtest.Options{Resource: "api"}, "Resource"},
		{"resource with query", oauthtest.Options{Resource: "https://api.example.com/x?y=1"}, "Resource"},
		{"resource with fragment", oauthtest.Options{Resource: "/x#y"}, "Resource"},
		{"resource not http", oauthtest.Options{Resource: "urn:example:api"}, "Resource"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustPanic(t, tc.want, func() { oauthtest.NewUnstartedServer(tc.opts).Close() })
		})
	}
	t.Run("colliding routes", func(t *testing.T) {
		srv := oauthtest.NewUnstartedServer(oauthtest.Options{
			Algorithms: []string{"EdDSA"},
			Prefix:     "/.well-known/oauth-protected-resource",
			Resource:   "/jwks",
		})
		defer srv.Close()
		mustPanic(t, "both at", srv.Start)
	})
}

func TestMethods(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	resp, err := srv.Client().Head(srv.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD jwks: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = srv.Client().Post(srv.JWKSURL(), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST jwks: %d %v", resp.StatusCode, resp.Header)
	}
}

// waitGoroutines polls until at most n goroutines run, and reports the count.
func waitGoroutines(n int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		got := runtime.NumGoroutine()
		if got <= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCloseAbortsDelayedRequests(t *testing.T) {
	before := runtime.NumGoroutine()
	srv := oauthtest.NewServer(oauthtest.Options{Algorithms: []string{"EdDSA"}})
	srv.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{Delay: time.Hour})
	srv.SetFault(oauthtest.EndpointToken, &oauthtest.Fault{Delay: time.Hour, Status: 503})

	const pending = 3
	errs := make(chan error, pending)
	for i := range pending {
		go func() {
			var resp *http.Response
			var err error
			if i%2 == 0 {
				resp, err = srv.Client().Get(srv.JWKSURL())
			} else {
				resp, err = srv.Client().Post(srv.TokenURL(), "application/x-www-form-urlencoded", nil)
			}
			if err == nil {
				resp.Body.Close()
				err = fmt.Errorf("request answered with %d", resp.StatusCode)
			} else {
				err = nil
			}
			errs <- err
		}()
	}
	// Wait until all requests are held by the server.
	deadline := time.Now().Add(10 * time.Second)
	for srv.Requests(oauthtest.EndpointJWKS)+srv.Requests(oauthtest.EndpointToken) < pending {
		if time.Now().After(deadline) {
			t.Fatal("requests did not arrive")
		}
		time.Sleep(5 * time.Millisecond)
	}

	start := time.Now()
	srv.Close()
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("Close took %v with delayed requests pending", elapsed)
	}
	for range pending {
		select {
		case err := <-errs:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a client request is still pending after Close")
		}
	}
	if got := waitGoroutines(before, 5*time.Second); got > before {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines after Close, %d before:\n%s", got, before, buf)
	}
}

func TestCloseWaitsForNormalRequests(t *testing.T) {
	srv := oauthtest.NewServer(oauthtest.Options{Algorithms: []string{"EdDSA"}})
	srv.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{Delay: 300 * time.Millisecond})
	done := make(chan int, 1)
	go func() {
		resp, err := srv.Client().Get(srv.JWKSURL())
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	for srv.Requests(oauthtest.EndpointJWKS) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// Close aborts a delay, by design; only requests past their delay are waited for.
	srv.Close()
	if status := <-done; status != 0 {
		t.Errorf("delayed request answered %d after Close", status)
	}
	srv.Close() // twice is fine
}

// TestConcurrentUse runs every mutating and reading method at once; run it
// with -race. Failures are reported with t.Error, as the helpers that call
// t.Fatal must not run outside the test goroutine.
func TestConcurrentUse(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"ES256", "EdDSA"}})
	srv.RegisterClient("svc", "pw", "read")
	hit := func(method, u string, body string, want int) {
		req, err := http.NewRequest(method, u, strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("svc", "pw")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s %s: status %d, want %d", method, u, resp.StatusCode, want)
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 10 {
				switch (i + j) % 8 {
				case 0:
					if tok := srv.Mint(oauthtest.Claims{"n": j}); strings.Count(tok, ".") != 2 {
						t.Errorf("token %q", tok)
					}
				case 1:
					hit(http.MethodGet, srv.JWKSURL(), "", 200)
				case 2:
					hit(http.MethodPost, srv.TokenURL(), "grant_type=client_credentials", 200)
				case 3:
					srv.RotateKey("EdDSA")
				case 4:
					if ids := srv.KeyIDs(); len(ids) > 1 {
						srv.RetireKey(ids[0])
					}
				case 5:
					srv.SetFault(oauthtest.EndpointOpenIDConfiguration, &oauthtest.Fault{Status: 500, Times: 1})
					srv.SetFault(oauthtest.EndpointAuthorize, &oauthtest.Fault{Delay: time.Millisecond, Times: 1})
					hit(http.MethodGet, srv.ServerMetadataURL(), "", 200)
				case 6:
					srv.Requests(oauthtest.EndpointJWKS)
					srv.ResetCounts()
				case 7:
					srv.RegisterClient(fmt.Sprint("c", i, j), "pw", "read")
					srv.PublishExtraKey(map[string]any{"kty": "oct", "kid": fmt.Sprint("x", i, j)})
					hit(http.MethodGet, srv.ResourceMetadataURL(), "", 200)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// The keys still verify after all that.
	verifyToken(t, srv, srv.MintWith(oauthtest.MintOptions{Alg: "EdDSA"}), "EdDSA")
}
