package tokenguard_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// The fault matrix: every way the authorization server's key set and
// introspection endpoint fail, injected in the guard's own HTTP client, and
// for each what the client gets, how many upstream calls the fault costs,
// that the guard recovers once it clears, and that no log holds a token.

// faultTransport fails requests whose path ends in a faulted suffix, and
// counts every request by suffix.
type faultTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	mode map[string]string // path suffix -> fault
	hits map[string]int
}

func newFaultTransport() *faultTransport {
	return &faultTransport{base: http.DefaultTransport, mode: map[string]string{}, hits: map[string]int{}}
}

func (f *faultTransport) set(suffix, mode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if mode == "" {
		delete(f.mode, suffix)
		return
	}
	f.mode[suffix] = mode
}

func (f *faultTransport) count(suffix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[suffix]
}

// trickle is a body that yields one byte every 50 ms until its request
// is cancelled.
type trickle struct{ ctx context.Context }

func (t trickle) Read(p []byte) (int, error) {
	select {
	case <-t.ctx.Done():
		return 0, t.ctx.Err()
	case <-time.After(50 * time.Millisecond):
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = ' '
	return 1, nil
}
func (trickle) Close() error { return nil }

func (f *faultTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	var mode string
	for s, m := range f.mode {
		if strings.HasSuffix(r.URL.Path, s) {
			mode = m
		}
	}
	for _, s := range []string{"/jwks", "/introspect", "/token"} {
		if strings.HasSuffix(r.URL.Path, s) {
			f.hits[s]++
		}
	}
	f.mu.Unlock()
	if r.Body != nil && mode != "" {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	reply := func(status int, ctype, body string, h ...string) (*http.Response, error) {
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: r, ContentLength: int64(len(body))}
		if ctype != "" {
			resp.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(h); i += 2 {
			resp.Header.Set(h[i], h[i+1])
		}
		return resp, nil
	}
	switch mode {
	case "":
		return f.base.RoundTrip(r)
	case "dns":
		return nil, &net.DNSError{Err: "no such host", Name: r.URL.Hostname(), IsNotFound: true}
	case "reset":
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	case "hang":
		<-r.Context().Done()
		return nil, r.Context().Err()
	case "trickle":
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: trickle{r.Context()}, Request: r, ContentLength: -1}, nil
	case "500":
		return reply(500, "text/plain", "internal error")
	case "429":
		return reply(429, "application/json", `{"error":"rate_limited"}`, "Retry-After", "30")
	case "400":
		return reply(400, "application/json", `{"error":"invalid_request"}`)
	case "garbage":
		return reply(200, "application/json", `{"active":tru`)
	case "html":
		return reply(200, "text/html", "<html>maintenance</html>")
	case "invalid":
		return reply(200, "application/json", `{"keys":[{"kty":`)
	case "empty":
		return reply(200, "application/json", `{"keys":[]}`)
	case "huge":
		return reply(200, "application/json", `{"keys":[],"pad":"`+strings.Repeat("a", 2<<20)+`"}`)
	case "unusable":
		return reply(200, "application/json", `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"},{"kty":"XYZ","kid":"u"}]}`)
	}
	return nil, fmt.Errorf("faultTransport: unknown mode %q", mode)
}

// faultSetup is an authorization server, a guard whose HTTP client injects
// faults, and the clock both share.
type faultSetup struct {
	as   *oauthtest.Server
	g    *tokenguard.Guard
	h    http.Handler
	ft   *faultTransport
	clk  *fakeClock
	logs *logBuffer
	sent []string // every token sent, for the log check
}

func newFaultSetup(t *testing.T) *faultSetup {
	t.Helper()
	s := &faultSetup{ft: newFaultTransport(), clk: newFakeClock(), logs: &logBuffer{}}
	s.as = newAS(t, oauthtest.Options{Now: s.clk.Now})
	s.as.RegisterClient(rsID, rsSecret)
	s.g = newGuard(t, s.as, tokenguard.Config{
		HTTPClient:     &http.Client{Transport: s.ft},
		FetchTimeout:   300 * time.Millisecond,
		Now:            s.clk.Now,
		Logger:         s.logs.logger(),
		TokenCacheSize: -1, // every JWT goes to the key set
		Introspection:  tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
	})
	s.h = s.g.Handler(http.NotFoundHandler())
	return s
}

func (s *faultSetup) call(token string) *http.Response {
	s.sent = append(s.sent, token)
	return call(s.h, "Bearer "+token).Result()
}

// noTokenLogged fails if any 16-byte piece of a token sent is in the log.
func (s *faultSetup) noTokenLogged(t *testing.T) {
	t.Helper()
	out := s.logs.String()
	for _, tok := range s.sent {
		for i := 0; i+16 <= len(tok); i += 8 {
			if strings.Contains(out, tok[i:i+16]) {
				t.Errorf("the log holds a token:\n%s", out)
				return
			}
		}
	}
}

func TestFaultMatrix(t *testing.T) {
	for _, tc := range []struct {
		target   string // "/jwks" or "/introspect"
		mode     string
		status   int // what a request that needs the target gets
		maxCalls int // upstream calls the 30 requests of the fault may cost
	}{
		// Key set: each request names a new kid, so each wants a refresh;
		// the unknown-kid cooldown allows one per 5 s (the clock stands
		// still), and the last good set keeps serving known keys.
		{"/jwks", "500", 503, 1},
		{"/jwks", "429", 503, 1},
		{"/jwks", "hang", 503, 1},
		{"/jwks", "trickle", 503, 1},
		{"/jwks", "invalid", 503, 1},
		{"/jwks", "empty", 503, 1},
		{"/jwks", "unusable", 503, 1},
		{"/jwks", "huge", 503, 1},
		{"/jwks", "reset", 503, 1},
		{"/jwks", "dns", 503, 1},
		{"/jwks", "html", 503, 1},
		// Introspection: each request is a new opaque token. The breaker
		// opens after 5 failures in a row; a 429's Retry-After holds calls
		// back at once. A 400 is about the request a client chose, so it
		// never opens the breaker: each new token costs its one call (as
		// any new opaque token does), plus one probe a minute; a repeated
		// token is held back (TestIntrospectionBadRequest...).
		{"/introspect", "500", 503, 5},
		{"/introspect", "429", 503, 1},
		{"/introspect", "hang", 503, 5},
		{"/introspect", "trickle", 503, 5},
		{"/introspect", "garbage", 503, 5},
		{"/introspect", "html", 503, 5},
		{"/introspect", "reset", 503, 5},
		{"/introspect", "dns", 503, 5},
		{"/introspect", "400", 503, 31},
	} {
		t.Run(strings.TrimPrefix(tc.target, "/")+"/"+tc.mode, func(t *testing.T) {
			s := newFaultSetup(t)
			valid, opaque := s.as.Mint(nil), s.as.MintOpaque(nil)
			for _, tok := range []string{valid, opaque} {
				if r := s.call(tok); r.StatusCode != 404 {
					t.Fatalf("before the fault: %d", r.StatusCode)
				}
			}
			before := s.ft.count(tc.target)
			s.ft.set(tc.target, tc.mode)
			for i := range 30 {
				var tok string
				if tc.target == "/jwks" {
					tok = s.as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": fmt.Sprintf("rotated-%d", i)}})
				} else {
					tok = s.as.MintOpaque(nil)
				}
				r := s.call(tok)
				if r.StatusCode != tc.status || r.StatusCode == 503 && r.Header.Get("Retry-After") == "" {
					t.Fatalf("request %d during the fault: %d, Retry-After %q", i, r.StatusCode, r.Header.Get("Retry-After"))
				}
			}
			if n := s.ft.count(tc.target) - before; n > tc.maxCalls || n == 0 {
				t.Errorf("the fault cost %d upstream calls, want 1 to %d", n, tc.maxCalls)
			}
			// What was known before still works during the fault.
			for name, tok := range map[string]string{"valid JWT": valid, "cached opaque token": opaque} {
				if r := s.call(tok); r.StatusCode != 404 {
					t.Errorf("%s during the fault: %d", name, r.StatusCode)
				}
			}
			// Recovery: the fault clears, the backoffs pass.
			s.ft.set(tc.target, "")
			s.clk.Advance(2 * time.Minute)
			var fresh string
			if tc.target == "/jwks" {
				s.as.RotateKey("RS256")
				fresh = s.as.Mint(nil)
			} else {
				fresh = s.as.MintOpaque(nil)
			}
			if r := s.call(fresh); r.StatusCode != 404 {
				t.Errorf("after the fault cleared: %d", r.StatusCode)
			}
			s.noTokenLogged(t)
		})
	}
}

// The authorization server down at start-up: New fails and says where.
func TestFaultDownAtStart(t *testing.T) {
	as := oauthtest.NewServer(oauthtest.Options{})
	url := as.ResourceMetadataURL()
	as.Close()
	_, err := tokenguard.New(context.Background(), tokenguard.Config{ResourceMetadataURL: url, InsecureAllowHTTP: true, FetchTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), url) {
		t.Errorf("New with the server down: %v", err)
	}
}

// Clock skew between the authorization server and the resource server,
// within the leeway (30 s) and beyond it, on both paths.
func TestFaultClockSkew(t *testing.T) {
	for _, tc := range []struct {
		skew   time.Duration // the server's clock minus the guard's
		status int
		desc   string
	}{
		{20 * time.Second, 404, ""},
		{-20 * time.Second, 404, ""},
		{90 * time.Second, 401, "token issued in the future"},
		{-90 * time.Second, 404, ""}, // iat 90 s ago: fine while exp is ahead
	} {
		t.Run(tc.skew.String(), func(t *testing.T) {
			guardClock := newFakeClock()
			serverClock := &fakeClock{t: guardClock.Now().Add(tc.skew)}
			as, g := opaqueSetup(t, oauthtest.Options{Now: serverClock.Now}, tokenguard.IntrospectionConfig{}, tokenguard.Config{Now: guardClock.Now})
			h := g.Handler(http.NotFoundHandler())
			w := call(h, "Bearer "+as.Mint(nil))
			want := ""
			if tc.status == 401 {
				want = wantChallenge(g, "invalid_token", tc.desc)
			}
			if w.Code != tc.status || w.Header().Get("WWW-Authenticate") != want {
				t.Errorf("JWT: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			// An opaque token with nbf at the server's now.
			ow := call(h, "Bearer "+as.MintOpaque(oauthtest.Claims{"nbf": serverClock.Now().Unix()}))
			wantOpaque := 404
			if tc.skew > 30*time.Second {
				wantOpaque = 401
			}
			if ow.Code != wantOpaque {
				t.Errorf("opaque token with nbf: %d %s", ow.Code, ow.Header().Get("WWW-Authenticate"))
			}
		})
	}
	// Expiry: a token that expired 20 s ago by the guard's clock passes
	// within the leeway; 90 s ago it does not.
	clk := newFakeClock()
	as := newAS(t, oauthtest.Options{Now: clk.Now})
	g := newGuard(t, as, tokenguard.Config{Now: clk.Now})
	h := g.Handler(http.NotFoundHandler())
	for _, tc := range []struct {
		ago    time.Duration
		status int
	}{{20 * time.Second, 404}, {90 * time.Second, 401}} {
		tok := as.Mint(oauthtest.Claims{"exp": clk.Now().Add(-tc.ago).Unix(), "iat": clk.Now().Add(-time.Hour).Unix()})
		if w := call(h, "Bearer "+tok); w.Code != tc.status {
			t.Errorf("expired %s ago: %d", tc.ago, w.Code)
		}
	}
}

// Keys rotate while requests flow: a token signed by a new key is
// accepted as soon as it is published (one shared refresh), a token of a
// retired key is refused once a refresh has seen it go, and nothing in
// between answers wrongly.
func TestFaultRotationUnderLoad(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	g := newGuard(t, as, tokenguard.Config{UnknownKeyCooldown: time.Millisecond})
	h := g.Handler(http.NotFoundHandler())
	oldKid := as.KeyIDs()[0]
	old := as.Mint(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong []string
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if w := call(h, "Bearer "+old); w.Code != 404 && w.Code != 401 {
					mu.Lock()
					wrong = append(wrong, fmt.Sprintf("old key: %d", w.Code))
					mu.Unlock()
				}
			}
		}()
	}
	for range 5 {
		as.RotateKey("RS256")
		if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 404 {
			t.Errorf("token of a key just published: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	as.RetireKey(oldKid)
	if w := call(h, "Bearer "+as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": "gone"}})); w.Code != 401 {
		t.Errorf("unknown kid after rotation: %d", w.Code)
	}
	cancel()
	wg.Wait()
	if w := call(h, "Bearer "+old); w.Code != 401 {
		t.Errorf("token of the retired key, after a refresh saw it go: %d", w.Code)
	}
	if len(wrong) > 0 {
		t.Errorf("%d wrong answers during rotation, e.g. %s", len(wrong), wrong[0])
	}
}
