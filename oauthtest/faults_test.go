package oauthtest_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestFaultReplacesResponse(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	tests := []struct {
		name        string
		fault       oauthtest.Fault
		status      int
		body        string
		contentType []string
		header      map[string]string
	}{
		{
			name:        "status and JSON body",
			fault:       oauthtest.Fault{Status: 503, Body: `{"error":"temporarily_unavailable"}`, Header: http.Header{"retry-after": {"7"}}},
			status:      503,
			body:        `{"error":"temporarily_unavailable"}`,
			contentType: []string{"application/json"},
			header:      map[string]string{"Retry-After": "7"},
		},
		{
			name:        "garbage with 200",
			fault:       oauthtest.Fault{Status: 200, Body: "not json", ContentType: "text/html"},
			status:      200,
			body:        "not json",
			contentType: []string{"text/html"},
		},
		{
			name:   "status only",
			fault:  oauthtest.Fault{Status: 500},
			status: 500,
		},
		{
			name:   "suppressed Content-Type",
			fault:  oauthtest.Fault{Status: 200, Body: `{"keys":[]}`, Header: http.Header{"Content-Type": nil}},
			status: 200,
			body:   `{"keys":[]}`,
		},
		{
			name:        "Content-Type from Header",
			fault:       oauthtest.Fault{Status: 200, Body: `{"keys":[]}`, Header: http.Header{"Content-Type": {"application/jwk-set+json"}}},
			status:      200,
			body:        `{"keys":[]}`,
			contentType: []string{"application/jwk-set+json"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fault
			srv.SetFault(oauthtest.EndpointJWKS, &f)
			f.Status = 204 // SetFault copied it, headers included
			if f.Header != nil {
				f.Header.Set("X-Mutated", "1")
			}
			status, h, body := get(t, srv, srv.JWKSURL())
			if status != tc.status || string(body) != tc.body {
				t.Errorf("got %d %q, want %d %q", status, body, tc.status, tc.body)
			}
			if got := h.Values("Content-Type"); !slices.Equal(got, tc.contentType) {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if h.Get("X-Mutated") != "" {
				t.Error("a change to the Fault after SetFault took effect")
			}
			for name, want := range tc.header {
				if got := h.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			srv.SetFault(oauthtest.EndpointJWKS, nil)
			if status, _, _ := get(t, srv, srv.JWKSURL()); status != 200 {
				t.Errorf("after clearing: status %d", status)
			}
		})
	}
}

func TestFaultIsPerEndpoint(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	srv.RegisterClient("svc", "pw")
	srv.SetFault(oauthtest.EndpointToken, &oauthtest.Fault{Status: 429, Body: `{"error":"slow_down"}`})
	r := postToken(t, srv, url.Values{"grant_type": {"client_credentials"}}, []string{"svc", "pw"})
	if r.status != 429 || r.body["error"] != "slow_down" {
		t.Errorf("token: %d %v", r.status, r.body)
	}
	if len(fetchJWKS(t, srv)) != 1 {
		t.Error("jwks affected by a token fault")
	}
}

func TestFaultTimes(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	srv.SetFault(oauthtest.EndpointServerMetadata, &oauthtest.Fault{Status: 502, Times: 2})
	var got []int
	for range 4 {
		status, _, _ := get(t, srv, srv.ServerMetadataURL())
		got = append(got, status)
	}
	if want := []int{502, 502, 200, 200}; !slices.Equal(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	if n := srv.Requests(oauthtest.EndpointServerMetadata); n != 4 {
		t.Errorf("count %d, want 4 (faulted requests count)", n)
	}
}

func TestFaultDelayThenNormal(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	const delay = 100 * time.Millisecond
	srv.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{Delay: delay, Body: "ignored", Header: http.Header{"X-Ignored": {"1"}}})
	start := time.Now()
	status, h, _ := get(t, srv, srv.JWKSURL())
	if elapsed := time.Since(start); elapsed < delay {
		t.Errorf("answered after %v, want at least %v", elapsed, delay)
	}
	if status != 200 || h.Get("X-Ignored") != "" || len(fetchJWKS(t, srv)) != 1 {
		t.Errorf("status %d, header %v", status, h)
	}
}

func TestFaultDelayCancelledByClient(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	srv.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{Delay: time.Minute, Status: 200})
	get(t, srv, srv.ResourceMetadataURL()) // warm up, so the count below is steady
	srv.Client().CloseIdleConnections()
	before := waitGoroutines(0, 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.JWKSURL(), nil)
	start := time.Now()
	resp, err := srv.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("request succeeded with status %d", resp.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the context deadline", err)
	}
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("took %v", elapsed)
	}
	// The server handler gave up too, before Close.
	if got := waitGoroutines(before, 5*time.Second); got > before {
		t.Errorf("%d goroutines after the cancelled request, %d before", got, before)
	}
	start = time.Now()
	srv.Close()
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Close took %v", elapsed)
	}
}

func TestRequestCounts(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	names := []string{
		oauthtest.EndpointJWKS, oauthtest.EndpointToken, oauthtest.EndpointRegister, oauthtest.EndpointIntrospect,
		oauthtest.EndpointAuthorize, oauthtest.EndpointResourceMetadata, oauthtest.EndpointServerMetadata,
		oauthtest.EndpointOpenIDConfiguration, oauthtest.EndpointRevoke,
	}
	want := map[string]string{
		"jwks": "jwks", "token": "token", "register": "register", "introspect": "introspect", "authorize": "authorize",
		"resource_metadata": "resource_metadata", "server_metadata": "server_metadata", "openid_configuration": "openid_configuration",
		"revoke": "revoke",
	}
	for _, n := range names {
		if want[n] != n {
			t.Errorf("endpoint constant %q", n)
		}
		if srv.Requests(n) != 0 {
			t.Errorf("%s starts at %d", n, srv.Requests(n))
		}
	}
	for range 3 {
		get(t, srv, srv.JWKSURL())
	}
	get(t, srv, srv.ResourceMetadataURL())
	get(t, srv, srv.OpenIDConfigurationURL())
	get(t, srv, srv.TokenURL()) // 405, still counted
	get(t, srv, srv.URL+"/nowhere")
	get(t, srv, srv.URL+"/oauth/jwks/")
	counts := map[string]int{}
	for _, n := range names {
		counts[n] = srv.Requests(n)
	}
	wantCounts := map[string]int{"jwks": 3, "resource_metadata": 1, "openid_configuration": 1, "token": 1}
	for _, n := range names {
		if counts[n] != wantCounts[n] {
			t.Errorf("Requests(%q) = %d, want %d", n, counts[n], wantCounts[n])
		}
	}
	srv.ResetCounts()
	for _, n := range names {
		if srv.Requests(n) != 0 {
			t.Errorf("after ResetCounts, %s = %d", n, srv.Requests(n))
		}
	}
	get(t, srv, srv.JWKSURL())
	if srv.Requests("jwks") != 1 {
		t.Errorf("counting stopped after ResetCounts")
	}
	mustPanic(t, `unknown endpoint "jwk"`, func() { srv.Requests("jwk") })
	mustPanic(t, `unknown endpoint "tokens"`, func() { srv.SetFault("tokens", &oauthtest.Fault{Status: 500}) })
	mustPanic(t, "invalid status 42", func() { srv.SetFault("token", &oauthtest.Fault{Status: 42}) })
}
