package introspect_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/introspect"
)

// secretToken is the token every test introspects. No error may contain it.
const secretToken = "opaque-SECRET-token-4f9a77c1"

// now is the fixed time of the injected clock.
var now = time.Unix(1_700_000_000, 0)

func fixedNow() time.Time { return now }

// clock is an adjustable injected clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(now.UnixNano())
	return c
}

func (c *clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Set puts the clock d after now.
func (c *clock) Set(d time.Duration) { c.ns.Store(now.Add(d).UnixNano()) }

// server starts a loopback test server closed at the end of the test.
func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// jsonReply answers every request with status and body as JSON.
func jsonReply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

// newClient builds a client for tests: plain HTTP allowed, fixed clock
// unless cfg sets one.
func newClient(t *testing.T, cfg introspect.Config) *introspect.Client {
	t.Helper()
	cfg.InsecureAllowHTTP = true
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	c, err := introspect.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// call introspects secretToken and checks that no error reveals it.
func call(t *testing.T, c *introspect.Client) (*introspect.Result, error) {
	t.Helper()
	return callCtx(t, context.Background(), c)
}

func callCtx(t *testing.T, ctx context.Context, c *introspect.Client) (*introspect.Result, error) {
	t.Helper()
	r, err := c.Introspect(ctx, secretToken)
	checkNoToken(t, err)
	if err == nil && r == nil {
		t.Error("Introspect returned neither a result nor an error")
	}
	if err != nil && r != nil {
		t.Errorf("Introspect returned a result with error %v", err)
	}
	return r, err
}

// checkNoToken fails if err's text, or any error in its chain, contains the
// token.
func checkNoToken(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		for i := 0; i+12 <= len(secretToken); i++ {
			if strings.Contains(s, secretToken[i:i+12]) {
				t.Errorf("error reveals (part of) the token: %s", s)
				return
			}
		}
	}
}

// wantUpstream checks err is an *UpstreamError and returns it.
func wantUpstream(t *testing.T, err error) *introspect.UpstreamError {
	t.Helper()
	var ue *introspect.UpstreamError
	if !errors.As(err, &ue) || !errors.Is(err, introspect.ErrUpstream) {
		t.Fatalf("err = %v (%T), want *UpstreamError", err, err)
	}
	if errors.Is(err, introspect.ErrTokenRejected) {
		t.Errorf("upstream error %v also matches ErrTokenRejected", err)
	}
	return ue
}

// wantTokenError checks err is a *TokenError and returns it.
func wantTokenError(t *testing.T, err error) *introspect.TokenError {
	t.Helper()
	var te *introspect.TokenError
	if !errors.As(err, &te) || !errors.Is(err, introspect.ErrTokenRejected) {
		t.Fatalf("err = %v (%T), want *TokenError", err, err)
	}
	if errors.Is(err, introspect.ErrUpstream) {
		t.Errorf("token error %v also matches ErrUpstream", err)
	}
	return te
}

// counter counts requests to a handler and remembers what they carried.
type counter struct {
	n    atomic.Int64
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method string
	header http.Header
	form   map[string][]string
	err    error
}

func (c *counter) record(r *http.Request) seenRequest {
	c.n.Add(1)
	s := seenRequest{method: r.Method, header: r.Header.Clone()}
	s.err = r.ParseForm()
	s.form = r.PostForm
	c.mu.Lock()
	c.seen = append(c.seen, s)
	c.mu.Unlock()
	return s
}

func (c *counter) last(t *testing.T) seenRequest {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) == 0 {
		t.Fatal("the server saw no request")
	}
	return c.seen[len(c.seen)-1]
}
