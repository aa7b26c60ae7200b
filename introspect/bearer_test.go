package introspect_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/introspect"
)

// ccServers is a token endpoint issuing "at-1", "at-2", … with the
// client_credentials grant, and an introspection endpoint that accepts the
// bearer tokens accept allows.
type ccServers struct {
	tokenCalls  atomic.Int64
	introCalls  atomic.Int64
	expiresIn   string        // JSON value of expires_in; "" omits it
	tokenDelay  time.Duration // how long the token endpoint takes
	tokenStatus atomic.Int64  // when non-zero, the token endpoint fails with it
	accept      func(bearer string) bool

	mu          sync.Mutex
	bearersSeen []string
	tokenErrs   []string // what was wrong with token requests
	tokenURL    string
	introURL    string
}

func newCCServers(t *testing.T, s *ccServers) *ccServers {
	t.Helper()
	if s.accept == nil {
		s.accept = func(string) bool { return true }
	}
	tok := server(t, func(w http.ResponseWriter, r *http.Request) {
		n := s.tokenCalls.Add(1)
		wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(hardIDEncoded+":"+hardSecretEncoded))
		_ = r.ParseForm()
		wantForm := map[string][]string{"grant_type": {"client_credentials"}, "scope": {"introspect read"}}
		if got := r.Header.Get("Authorization"); got != wantAuth || r.Method != http.MethodPost || !maps.EqualFunc(r.PostForm, wantForm, slices.Equal) {
			s.mu.Lock()
			s.tokenErrs = append(s.tokenErrs, fmt.Sprintf("%s, Authorization %q, form %q", r.Method, got, r.PostForm))
			s.mu.Unlock()
			jsonReply(401, `{"error":"invalid_client"}`)(w, r)
			return
		}
		time.Sleep(s.tokenDelay)
		if st := s.tokenStatus.Load(); st != 0 {
			jsonReply(int(st), `{"error":"temporarily_unavailable"}`)(w, r)
			return
		}
		body := fmt.Sprintf(`{"access_token":"at-%d","token_type":"Bearer"`, n)
		if s.expiresIn != "" {
			body += `,"expires_in":` + s.expiresIn
		}
		jsonReply(200, body+"}")(w, r)
	})
	intro := server(t, func(w http.ResponseWriter, r *http.Request) {
		s.introCalls.Add(1)
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		s.bearersSeen = append(s.bearersSeen, bearer)
		s.mu.Unlock()
		if !ok || r.PostFormValue("token") != secretToken || !s.accept(bearer) {
			jsonReply(401, `{"error":"invalid_token"}`)(w, r)
			return
		}
		jsonReply(200, `{"active":true}`)(w, r)
	})
	s.tokenURL, s.introURL = tok.URL+"/oauth/token", intro.URL+"/oauth/introspect"
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.tokenErrs {
			t.Errorf("token endpoint got a bad request: %s", e)
		}
	})
	return s
}

func (s *ccServers) config(now func() time.Time) introspect.Config {
	return introspect.Config{
		Endpoint: s.introURL, TokenEndpoint: s.tokenURL, TokenScopes: []string{"introspect", "read"},
		ClientID: hardID, ClientSecret: hardSecret, Now: now,
	}
}

func (s *ccServers) lastBearer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bearersSeen) == 0 {
		return ""
	}
	return s.bearersSeen[len(s.bearersSeen)-1]
}

func TestClientCredentialsFetchedOnceForConcurrentCalls(t *testing.T) {
	s := newCCServers(t, &ccServers{expiresIn: "3600", tokenDelay: 50 * time.Millisecond})
	c := newClient(t, s.config(nil))
	if c.AuthMethod() != introspect.AuthBearer {
		t.Fatalf("AuthMethod() = %s", c.AuthMethod())
	}
	const n = 50
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := call(t, c)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if got := s.tokenCalls.Load(); got != 1 {
		t.Errorf("token endpoint called %d times, want 1", got)
	}
	if got := s.introCalls.Load(); got != n {
		t.Errorf("introspection endpoint called %d times, want %d", got, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.bearersSeen {
		if b != "at-1" {
			t.Errorf("bearer %q sent, want at-1", b)
		}
	}
}

func TestClientCredentialsRefresh(t *testing.T) {
	tests := []struct {
		expiresIn     string
		keep, refresh time.Duration // clock offsets: still the first token; a new one
	}{
		// 60 s: refreshed in the last fifth (12 s early).
		{"60", 47 * time.Second, 49 * time.Second},
		// 1 h: refreshed 30 s early.
		{"3600", 3569 * time.Second, 3571 * time.Second},
		// A numeric string, as some servers send.
		{`"60"`, 47 * time.Second, 49 * time.Second},
	}
	for _, tc := range tests {
		t.Run("expires_in "+tc.expiresIn, func(t *testing.T) {
			s := newCCServers(t, &ccServers{expiresIn: tc.expiresIn})
			clk := newClock()
			c := newClient(t, s.config(clk.Now))
			steps := []struct {
				at     time.Duration
				bearer string
				calls  int64
			}{{0, "at-1", 1}, {tc.keep, "at-1", 1}, {tc.refresh, "at-2", 2}, {tc.refresh + time.Second, "at-2", 2}}
			for _, st := range steps {
				clk.Set(st.at)
				if _, err := call(t, c); err != nil {
					t.Fatalf("at %s: %v", st.at, err)
				}
				if b := s.lastBearer(); b != st.bearer || s.tokenCalls.Load() != st.calls {
					t.Errorf("at %s: bearer %s after %d token calls, want %s after %d", st.at, b, s.tokenCalls.Load(), st.bearer, st.calls)
				}
			}
		})
	}
}

// Without expires_in the token is kept until the endpoint rejects it.
func TestClientCredentialsWithoutExpiry(t *testing.T) {
	s := newCCServers(t, &ccServers{})
	clk := newClock()
	c := newClient(t, s.config(clk.Now))
	for _, at := range []time.Duration{0, time.Hour, 48 * time.Hour} {
		clk.Set(at)
		if _, err := call(t, c); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.tokenCalls.Load(); got != 1 {
		t.Errorf("token endpoint called %d times, want 1", got)
	}
}

func TestClientCredentialsRefetchOn401(t *testing.T) {
	t.Run("new token accepted", func(t *testing.T) {
		s := newCCServers(t, &ccServers{expiresIn: "3600", accept: func(b string) bool { return b != "at-1" }})
		c := newClient(t, s.config(nil))
		if _, err := call(t, c); err != nil {
			t.Fatal(err)
		}
		if tc, ic := s.tokenCalls.Load(), s.introCalls.Load(); tc != 2 || ic != 2 {
			t.Errorf("token calls %d, introspection calls %d, want 2 and 2", tc, ic)
		}
		// The new token is kept.
		if _, err := call(t, c); err != nil {
			t.Fatal(err)
		}
		if tc := s.tokenCalls.Load(); tc != 2 {
			t.Errorf("token calls %d after a further call, want 2", tc)
		}
	})
	t.Run("rejected again: once only", func(t *testing.T) {
		s := newCCServers(t, &ccServers{expiresIn: "3600", accept: func(string) bool { return false }})
		c := newClient(t, s.config(nil))
		_, err := call(t, c)
		if ue := wantUpstream(t, err); !errors.Is(err, introspect.ErrCredentialsRejected) || ue.StatusCode != 401 {
			t.Errorf("err = %v, want credentials rejected with 401", err)
		}
		if tc, ic := s.tokenCalls.Load(), s.introCalls.Load(); tc != 2 || ic != 2 {
			t.Errorf("token calls %d, introspection calls %d, want 2 and 2", tc, ic)
		}
	})
	t.Run("concurrent 401s fetch one new token", func(t *testing.T) {
		// Every call starts with at-1. The first rejection comes at once;
		// the others only after at-2 has been used, so they must not throw
		// at-2 away.
		var first atomic.Bool
		var once sync.Once
		at2Used := make(chan struct{})
		accept := func(b string) bool {
			if b != "at-1" {
				once.Do(func() { close(at2Used) })
				return true
			}
			if first.CompareAndSwap(false, true) {
				return false
			}
			select {
			case <-at2Used:
			case <-time.After(5 * time.Second):
			}
			return false
		}
		s := newCCServers(t, &ccServers{expiresIn: "3600", tokenDelay: 20 * time.Millisecond, accept: accept})
		c := newClient(t, s.config(nil))
		const n = 30
		errs := make(chan error, n)
		for range n {
			go func() {
				_, err := call(t, c)
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if tc := s.tokenCalls.Load(); tc != 2 {
			t.Errorf("token calls %d, want 2", tc)
		}
	})
	t.Run("static token is not retried", func(t *testing.T) {
		var n counter
		srv := server(t, func(w http.ResponseWriter, r *http.Request) { n.record(r); w.WriteHeader(401) })
		_, err := call(t, newClient(t, introspect.Config{Endpoint: srv.URL, BearerToken: "static"}))
		if wantUpstream(t, err); !errors.Is(err, introspect.ErrCredentialsRejected) {
			t.Errorf("err = %v, want credentials rejected", err)
		}
		if got := n.n.Load(); got != 1 {
			t.Errorf("%d requests, want 1", got)
		}
	})
}

func TestClientCredentialsTokenEndpointErrors(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
		wantRetry  time.Duration
		wantCreds  bool
		wantBad    bool
		errHas     string
	}{
		{name: "401 invalid_client", handler: jsonReply(401, `{"error":"invalid_client","error_description":"unknown client"}`),
			wantStatus: 401, wantCreds: true, errHas: `"invalid_client": "unknown client"`},
		{name: "400 invalid_client", handler: jsonReply(400, `{"error":"invalid_client"}`), wantStatus: 400, wantCreds: true},
		{name: "400 invalid_scope", handler: jsonReply(400, `{"error":"invalid_scope"}`), wantStatus: 400, errHas: "invalid_scope"},
		{name: "503 with Retry-After", wantStatus: 503, wantRetry: 5 * time.Second,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "5")
				w.WriteHeader(503)
			}},
		{name: "not a bearer token", handler: jsonReply(200, `{"access_token":"x","token_type":"mac"}`), wantStatus: 200, wantBad: true},
		{name: "no access_token", handler: jsonReply(200, `{"token_type":"Bearer"}`), wantStatus: 200, wantBad: true},
		{name: "expires_in not a number", handler: jsonReply(200, `{"access_token":"x","expires_in":"soon"}`), wantStatus: 200, wantBad: true},
		{name: "HTML", wantStatus: 200, wantBad: true, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html></html>")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var intro counter
			is := server(t, func(w http.ResponseWriter, r *http.Request) { intro.record(r); jsonReply(200, `{"active":true}`)(w, r) })
			ts := server(t, tc.handler)
			c := newClient(t, introspect.Config{Endpoint: is.URL, TokenEndpoint: ts.URL, ClientID: "rs", ClientSecret: "s"})
			_, err := call(t, c)
			ue := wantUpstream(t, err)
			if ue.StatusCode != tc.wantStatus || ue.RetryAfter != tc.wantRetry {
				t.Errorf("StatusCode %d, RetryAfter %s, want %d, %s (%v)", ue.StatusCode, ue.RetryAfter, tc.wantStatus, tc.wantRetry, err)
			}
			if got := errors.Is(err, introspect.ErrCredentialsRejected); got != tc.wantCreds {
				t.Errorf("credentials rejected = %v, want %v (%v)", got, tc.wantCreds, err)
			}
			if got := errors.Is(err, introspect.ErrBadResponse); got != tc.wantBad {
				t.Errorf("bad response = %v, want %v (%v)", got, tc.wantBad, err)
			}
			if !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), "token endpoint") {
				t.Errorf("err = %q, want it to name the token endpoint and contain %q", err, tc.errHas)
			}
			if intro.n.Load() != 0 {
				t.Error("introspection endpoint called without a bearer token")
			}
		})
	}
}

// An early refresh that fails leaves the current token in use until it
// really expires.
func TestClientCredentialsEarlyRefreshFails(t *testing.T) {
	s := newCCServers(t, &ccServers{expiresIn: "60"})
	clk := newClock()
	c := newClient(t, s.config(clk.Now))
	if _, err := call(t, c); err != nil {
		t.Fatal(err)
	}
	s.tokenStatus.Store(503)
	clk.Set(50 * time.Second) // past the refresh point (48 s), before expiry
	if _, err := call(t, c); err != nil {
		t.Fatalf("with a failed early refresh: %v", err)
	}
	if b := s.lastBearer(); b != "at-1" {
		t.Errorf("bearer %s, want at-1", b)
	}
	clk.Set(60 * time.Second)
	_, err := call(t, c)
	if ue := wantUpstream(t, err); ue.StatusCode != 503 {
		t.Errorf("after expiry: %v, want the token endpoint's 503", err)
	}
	if got := s.tokenCalls.Load(); got != 3 {
		t.Errorf("token calls %d, want 3", got)
	}
}

// A caller that gives up while the token is being fetched does not fail
// the fetch for the others.
func TestClientCredentialsWaiterGivesUp(t *testing.T) {
	s := newCCServers(t, &ccServers{expiresIn: "3600", tokenDelay: 200 * time.Millisecond})
	c := newClient(t, s.config(nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := callCtx(t, ctx, c)
	if wantUpstream(t, err); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the caller's deadline", err)
	}
	if _, err := call(t, c); err != nil {
		t.Fatal(err)
	}
	if got := s.tokenCalls.Load(); got != 1 {
		t.Errorf("token calls %d, want 1 (the first fetch completes for the second caller)", got)
	}
}
