package tgredis_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tokenguard/tokenguard"
	tgredis "github.com/tokenguard/tokenguard/cache/redis"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// The core's fleet behaviour (its fleet_test.go, on an in-process store),
// proven here against a real redis-server: real Guards, each replica with
// a go-redis client and a Store of its own, and an oauthtest authorization
// server on loopback.

// fleetKey seals the entries of the test fleets (32 bytes).
var fleetKey = []byte("tgredis-fleet-test-key-32-bytes!")

const (
	rsID     = "resource-server"
	rsSecret = "resource-server-secret"
)

// newFleetAS starts an authorization server that knows the replicas'
// introspection client.
func newFleetAS(t testing.TB, opts oauthtest.Options) *oauthtest.Server {
	t.Helper()
	as := oauthtest.NewServer(opts)
	t.Cleanup(as.Close)
	as.RegisterClient(rsID, rsSecret)
	return as
}

// countingStore is a SharedStore that counts the calls made to the one it
// wraps, and how long they took.
type countingStore struct {
	s       tokenguard.SharedStore
	calls   atomic.Int64
	spent   atomic.Int64 // nanoseconds, all calls
	slowest atomic.Int64 // nanoseconds, one call
}

var _ tokenguard.SharedStore = (*countingStore)(nil)

func (c *countingStore) done(start time.Time) {
	d := int64(time.Since(start))
	c.calls.Add(1)
	c.spent.Add(d)
	for {
		old := c.slowest.Load()
		if d <= old || c.slowest.CompareAndSwap(old, d) {
			return
		}
	}
}

// reset zeroes the counts and returns what they were.
func (c *countingStore) reset() (calls int64, spent, slowest time.Duration) {
	return c.calls.Swap(0), time.Duration(c.spent.Swap(0)), time.Duration(c.slowest.Swap(0))
}

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	defer c.done(time.Now())
	return c.s.Get(ctx, key)
}

func (c *countingStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	defer c.done(time.Now())
	return c.s.Set(ctx, key, value, ttl)
}

func (c *countingStore) Delete(ctx context.Context, key string) error {
	defer c.done(time.Now())
	return c.s.Delete(ctx, key)
}

func (c *countingStore) Lease(ctx context.Context, key, holder string, ttl time.Duration) (bool, error) {
	defer c.done(time.Now())
	return c.s.Lease(ctx, key, holder, ttl)
}

func (c *countingStore) Release(ctx context.Context, key, holder string) error {
	defer c.done(time.Now())
	return c.s.Release(ctx, key, holder)
}

func (c *countingStore) Wait(ctx context.Context, key string) ([]byte, error) {
	defer c.done(time.Now())
	return c.s.Wait(ctx, key)
}

func (c *countingStore) Take(ctx context.Context, key string, limit int, interval time.Duration) (bool, time.Duration, error) {
	defer c.done(time.Now())
	return c.s.Take(ctx, key, limit, interval)
}

// logBuffer collects a Guard's log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// replica is one resource server of a fleet: a Guard with its own Redis
// client and Store.
type replica struct {
	g     *tokenguard.Guard
	store *countingStore
}

// guardConfig is the configuration every replica of as shares; fc.Store
// is set by the caller (or left nil: no fleet).
func guardConfig(as *oauthtest.Server, fc tokenguard.FleetConfig) tokenguard.Config {
	return tokenguard.Config{
		Issuer:            as.Issuer,
		Audience:          as.Resource(),
		InsecureAllowHTTP: true,
		Introspection:     tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
		Fleet:             fc,
	}
}

func newGuard(t testing.TB, cfg tokenguard.Config) *tokenguard.Guard {
	t.Helper()
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// newReplicas builds n replicas of a fleet at as sharing the keys under
// prefix on srv, each with its own client; mod, if any, changes each
// configuration last.
func newReplicas(t testing.TB, n int, as *oauthtest.Server, srv *server, prefix string, fc tokenguard.FleetConfig, mod func(*tokenguard.Config)) []*replica {
	t.Helper()
	rs := make([]*replica, n)
	for i := range rs {
		cs := &countingStore{s: tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix})}
		f := fc
		f.Store = cs
		if f.Key == nil {
			f.Key = fleetKey
		}
		cfg := guardConfig(as, f)
		if mod != nil {
			mod(&cfg)
		}
		rs[i] = &replica{g: newGuard(t, cfg), store: cs}
	}
	return rs
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
})

// serve sends one request with token through h.
func serve(h http.Handler, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/orders", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func introspections(as *oauthtest.Server) int { return as.Requests(oauthtest.EndpointIntrospect) }

// redisKeys returns the keys under prefix+pattern on the server of c.
func redisKeys(t testing.TB, c redis.UniversalClient, pattern string) []string {
	t.Helper()
	var keys []string
	var cursor uint64
	for {
		ks, next, err := c.Scan(context.Background(), cursor, pattern, 1000).Result()
		if err != nil {
			t.Fatalf("SCAN %s: %v", pattern, err)
		}
		keys = append(keys, ks...)
		if cursor = next; cursor == 0 {
			return keys
		}
	}
}

// One replica's answer is every replica's: three replicas, one token, one
// introspection call; a refusal is shared too; and no key in Redis holds
// the token.
func TestFleetSharesAnswers(t *testing.T) {
	srv := needServer(t)
	prefix := testPrefix(t)
	as := newFleetAS(t, oauthtest.Options{})
	rs := newReplicas(t, 3, as, srv, prefix, tokenguard.FleetConfig{}, nil)

	tok := as.MintOpaque(oauthtest.Claims{"sub": "alice"})
	for i, r := range rs {
		var sub string
		h := r.g.Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if p, ok := tokenguard.PrincipalFrom(req.Context()); ok {
				sub = p.Subject
			}
		}))
		if w := serve(h, tok); w.Code != 200 || sub != "alice" {
			t.Fatalf("replica %d: %d, subject %q", i, w.Code, sub)
		}
	}
	if n := introspections(as); n != 1 {
		t.Errorf("three replicas, one token: %d introspection calls, want 1", n)
	}

	dead := "opaque-never-issued-token"
	for i, r := range rs {
		if w := serve(r.g.Handler(okHandler), dead); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "token is not active") {
			t.Errorf("replica %d, unknown token: %d %q", i, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	if n := introspections(as); n != 2 {
		t.Errorf("after an unknown token on three replicas: %d calls, want 2", n)
	}

	raw := client(t, srv)
	keys := redisKeys(t, raw, prefix+"*")
	answers := 0
	for _, k := range keys {
		if strings.Contains(k, tok) || strings.Contains(k, dead) {
			t.Errorf("Redis key %q holds the token", k)
		}
		if strings.HasPrefix(k, prefix+"a:") {
			answers++
			v, err := raw.Get(context.Background(), k).Bytes()
			if err != nil || bytes.Contains(v, []byte(tok)) || bytes.Contains(v, []byte(dead)) {
				t.Errorf("Redis value at %q: %v, or it holds the token", k, err)
			}
		}
	}
	if answers != 2 {
		t.Errorf("Redis holds %d answers (%q), want 2", answers, keys)
	}
}

// Whoever can read and write Redis but lacks Fleet.Key can neither read
// an answer (entries are encrypted: no claim of it is visible) nor make a
// replica accept more than the authorization server said: an entry
// altered in Redis (its TTL kept) fails its seal, the next replica asks
// the server itself, and no scope is granted that it did not give.
func TestFleetAlteredEntryIsRefused(t *testing.T) {
	srv := needServer(t)
	for _, c := range []struct {
		name  string
		alter func([]byte) []byte
	}{
		{"middle-byte", func(v []byte) []byte { v = bytes.Clone(v); v[len(v)/2] ^= 1; return v }},
		{"seal-byte", func(v []byte) []byte { v = bytes.Clone(v); v[0] ^= 1; return v }},
		{"answer-byte", func(v []byte) []byte { v = bytes.Clone(v); v[len(v)-2] ^= 0x20; return v }},
	} {
		t.Run(c.name, func(t *testing.T) {
			prefix := testPrefix(t)
			as := newFleetAS(t, oauthtest.Options{})
			var logs logBuffer
			rs := newReplicas(t, 3, as, srv, prefix, tokenguard.FleetConfig{}, func(cfg *tokenguard.Config) { cfg.Logger = logs.logger() })
			a, b, d := rs[0].g, rs[1].g, rs[2].g

			tok := as.MintOpaque(oauthtest.Claims{"sub": "alice", "scope": "read"})
			if w := serve(a.Handler(okHandler), tok); w.Code != 200 {
				t.Fatalf("replica a: %d", w.Code)
			}
			raw := client(t, srv)
			ctx := context.Background()
			keys := redisKeys(t, raw, prefix+"a:*")
			if len(keys) != 1 {
				t.Fatalf("Redis holds %d answers: %q", len(keys), keys)
			}
			v, err := raw.Get(ctx, keys[0]).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			for _, clear := range []string{"alice", `"read"`, `"active"`} {
				if bytes.Contains(v, []byte(clear)) {
					t.Errorf("the stored entry shows %s in clear", clear)
				}
			}
			altered := c.alter(v)
			if bytes.Equal(altered, v) {
				t.Fatalf("nothing to alter in %q", v)
			}
			ttl := raw.PTTL(ctx, keys[0]).Val()
			if err := raw.SetArgs(ctx, keys[0], altered, redis.SetArgs{KeepTTL: true}).Err(); err != nil {
				t.Fatal(err)
			}
			if after := raw.PTTL(ctx, keys[0]).Val(); after <= 0 || after > ttl {
				t.Fatalf("TTL %s before, %s after the SET KEEPTTL", ttl, after)
			}

			// b has never seen the token: it reads the altered entry,
			// refuses it and asks the server, which says "read".
			reachedAdmin := false
			admin := func(g *tokenguard.Guard) http.Handler {
				return g.Require(tokenguard.AllScopes("admin"))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reachedAdmin = true }))
			}
			if w := serve(admin(b), tok); w.Code != 403 || reachedAdmin {
				t.Errorf("altered entry, route requiring admin: %d, handler reached %v", w.Code, reachedAdmin)
			}
			if n := introspections(as); n != 2 {
				t.Errorf("altered entry: %d introspection calls, want 2 (b asked itself)", n)
			}
			if !strings.Contains(logs.String(), "seal does not hold") {
				t.Errorf("no warning of the broken seal: %s", logs.String())
			}
			if w := serve(b.Handler(okHandler), tok); w.Code != 200 {
				t.Errorf("b, plain route: %d", w.Code)
			}
			// b's answer replaced the altered entry: d takes it and still
			// gets "read", not "admin".
			if w := serve(admin(d), tok); w.Code != 403 || reachedAdmin {
				t.Errorf("d, route requiring admin: %d, handler reached %v", w.Code, reachedAdmin)
			}
			if w := serve(d.Handler(okHandler), tok); w.Code != 200 {
				t.Errorf("d, plain route: %d", w.Code)
			}
			if n := introspections(as); n != 2 {
				t.Errorf("after d: %d introspection calls, want 2 (d took b's answer)", n)
			}
			if now, err := raw.Get(ctx, keys[0]).Bytes(); err != nil || bytes.Equal(now, altered) {
				t.Errorf("the altered entry is still in Redis (%v)", err)
			}
		})
	}
}

// Ten replicas that see a new token at once ask once between them: one
// takes the lease, the others wait for its answer through Redis pub/sub.
func TestFleetCoalescesCalls(t *testing.T) {
	srv := needServer(t)
	as := newFleetAS(t, oauthtest.Options{})
	rs := newReplicas(t, 10, as, srv, testPrefix(t), tokenguard.FleetConfig{}, nil)
	as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Delay: 200 * time.Millisecond})
	tok := as.MintOpaque(nil)

	var wg sync.WaitGroup
	start := make(chan struct{})
	codes := make([]int, len(rs))
	took := make([]time.Duration, len(rs))
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := r.g.Handler(okHandler)
			<-start
			t0 := time.Now()
			codes[i] = serve(h, tok).Code
			took[i] = time.Since(t0)
		}()
	}
	close(start)
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("replica %d: %d", i, c)
		}
	}
	if n := introspections(as); n != 1 {
		t.Errorf("ten replicas at once: %d introspection calls, want 1", n)
	}
	t.Logf("ten replicas at once, introspection delayed 200ms: %d call, requests took %v", introspections(as), took)
}

// The fleet keeps to one budget: 3 a minute across two replicas, six new
// tokens: three answered, three 503 with Retry-After, three calls.
func TestFleetBudget(t *testing.T) {
	srv := needServer(t)
	as := newFleetAS(t, oauthtest.Options{})
	rs := newReplicas(t, 2, as, srv, testPrefix(t), tokenguard.FleetConfig{Budget: 3, BudgetInterval: time.Minute}, nil)
	var ok, unavailable int
	for i := range 6 {
		w := serve(rs[i%2].g.Handler(okHandler), as.MintOpaque(nil))
		switch w.Code {
		case 200:
			ok++
		case 503:
			unavailable++
			if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
				t.Errorf("request %d: 503 without Retry-After", i)
			}
		default:
			t.Errorf("request %d: %d", i, w.Code)
		}
	}
	if n := introspections(as); ok != 3 || unavailable != 3 || n != 3 {
		t.Errorf("budget 3, six new tokens on two replicas: %d × 200, %d × 503, %d calls; want 3, 3, 3", ok, unavailable, n)
	}
}

// A 429 with Retry-After that one replica hears holds the other back too:
// it answers 503 without calling.
func TestFleetHoldBack(t *testing.T) {
	srv := needServer(t)
	as := newFleetAS(t, oauthtest.Options{})
	rs := newReplicas(t, 2, as, srv, testPrefix(t), tokenguard.FleetConfig{}, nil)
	as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: 429, Header: http.Header{"Retry-After": {"30"}}, Times: 1})
	if w := serve(rs[0].g.Handler(okHandler), as.MintOpaque(nil)); w.Code != 503 {
		t.Fatalf("429 upstream: %d", w.Code)
	}
	w := serve(rs[1].g.Handler(okHandler), as.MintOpaque(nil))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || introspections(as) != 1 {
		t.Errorf("the other replica after a 429: %d, Retry-After %q, %d calls; want 503, set, 1", w.Code, w.Header().Get("Retry-After"), introspections(as))
	}
}

// Redis killed mid-test: the replicas answer correctly with direct calls
// (200 for a valid token, 401 for a made-up one), each call to the store
// fails within Fleet.Timeout, and each request loses less than Timeout to
// the store; once redis-server is back on the same port, they share again.
func TestFleetRedisKilledAndRestarted(t *testing.T) {
	needServer(t)
	srv, err := startServer(0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	const timeout = 50 * time.Millisecond
	as := newFleetAS(t, oauthtest.Options{})
	var logs logBuffer
	rs := newReplicas(t, 2, as, srv, testPrefix(t), tokenguard.FleetConfig{Timeout: timeout}, func(cfg *tokenguard.Config) { cfg.Logger = logs.logger() })

	before := as.MintOpaque(nil)
	for i, r := range rs {
		if w := serve(r.g.Handler(okHandler), before); w.Code != 200 {
			t.Fatalf("replica %d before the outage: %d", i, w.Code)
		}
	}
	if n := introspections(as); n != 1 {
		t.Fatalf("before the outage: %d calls, want 1", n)
	}

	srv.kill()
	for _, r := range rs {
		r.store.reset()
	}
	// A token each replica has cached: no call to the store, no call out.
	for i, r := range rs {
		if w := serve(r.g.Handler(okHandler), before); w.Code != 200 {
			t.Errorf("replica %d, cached token, Redis down: %d", i, w.Code)
		}
		if n, _, _ := r.store.reset(); n != 0 {
			t.Errorf("replica %d, cached token: %d store calls", i, n)
		}
	}
	calls0 := introspections(as)
	for round := range 5 {
		for i, r := range rs {
			for _, c := range []struct {
				token string
				want  int
			}{
				{as.MintOpaque(nil), 200},
				{"opaque-made-up-token-" + strconv.FormatInt(time.Now().UnixNano(), 36), 401},
			} {
				start := time.Now()
				w := serve(r.g.Handler(okHandler), c.token)
				took := time.Since(start)
				n, spent, slowest := r.store.reset()
				if w.Code != c.want {
					t.Errorf("round %d, replica %d, Redis down: %d, want %d", round, i, w.Code, c.want)
				}
				if slowest > timeout+20*time.Millisecond {
					t.Errorf("round %d, replica %d: a store call took %s, past Fleet.Timeout %s", round, i, slowest, timeout)
				}
				if spent > timeout {
					t.Errorf("round %d, replica %d: the request spent %s in %d store calls, more than Fleet.Timeout %s", round, i, spent, n, timeout)
				}
				if n == 0 {
					t.Errorf("round %d, replica %d: no store call for a new token", round, i)
				}
				if round == 0 {
					t.Logf("Redis down, replica %d, want %d: %s in all, %d store calls in %s (slowest %s)", i, c.want, took, n, spent, slowest)
				}
			}
		}
	}
	if n := introspections(as) - calls0; n != 20 {
		t.Errorf("Redis down, 20 new tokens: %d calls, want 20 (direct)", n)
	}
	if !strings.Contains(logs.String(), "shared store") {
		t.Errorf("no warning of the failing store: %s", logs.String())
	}

	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	// Until each replica's client has dialled anew, a request may still
	// meet a connection the old server closed: wait for both Stores.
	for i, r := range rs {
		deadline := time.Now().Add(5 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			_, err := r.store.Get(ctx, "probe")
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d: the store still fails 5s after the restart: %v", i, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	calls0 = introspections(as)
	after := as.MintOpaque(nil)
	for i, r := range rs {
		if w := serve(r.g.Handler(okHandler), after); w.Code != 200 {
			t.Errorf("replica %d after the restart: %d", i, w.Code)
		}
	}
	if n := introspections(as) - calls0; n != 1 {
		t.Errorf("after the restart, one new token on two replicas: %d calls, want 1 (shared again)", n)
	}
}

// The scenario of the issue: 10 replicas behind a round-robin, 1,000
// requests over 50 distinct opaque tokens, against a server that allows
// 5 introspections a minute; and again with 50 a minute. Without a store
// every replica asks about every token it sees first, and the server's
// limit turns most requests into 503s; with the Redis store and a budget
// of the server's limit, the fleet asks at most once per token, and with
// a budget that covers every token no request gets a 503.
func TestFleetScenario(t *testing.T) {
	srv := needServer(t)
	run := func(t *testing.T, shared bool, limit int) (calls, ok, unavailable int) {
		as := newFleetAS(t, oauthtest.Options{IntrospectionRateLimit: limit})
		guards := make([]*tokenguard.Guard, 10)
		if shared {
			for i, r := range newReplicas(t, len(guards), as, srv, testPrefix(t), tokenguard.FleetConfig{Budget: limit, BudgetInterval: time.Minute}, nil) {
				guards[i] = r.g
			}
		} else {
			for i := range guards {
				guards[i] = newGuard(t, guardConfig(as, tokenguard.FleetConfig{}))
			}
		}
		handlers := make([]http.Handler, len(guards))
		for i, g := range guards {
			handlers[i] = g.Handler(okHandler)
		}
		tokens := make([]string, 50)
		for i := range tokens {
			tokens[i] = as.MintOpaque(nil)
		}
		for i := range 1000 {
			// Every replica sees every token: replica i%10 gets token (i/10)%50.
			switch code := serve(handlers[i%len(handlers)], tokens[(i/len(handlers))%len(tokens)]).Code; code {
			case 200:
				ok++
			case 503:
				unavailable++
			default:
				t.Errorf("request %d: %d", i, code)
			}
		}
		return introspections(as), ok, unavailable
	}
	for _, c := range []struct {
		name   string
		shared bool
		limit  int
	}{
		{"alone/limit=5", false, 5},
		{"redis/limit=5,budget=5", true, 5},
		{"alone/limit=50", false, 50},
		{"redis/limit=50,budget=50", true, 50},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls, ok, unavailable := run(t, c.shared, c.limit)
			t.Logf("%-26s %3d upstream calls, %4d × 200, %4d × 503", c.name+":", calls, ok, unavailable)
			if ok+unavailable != 1000 {
				t.Errorf("%d × 200 + %d × 503 is not 1000", ok, unavailable)
			}
			if !c.shared {
				return
			}
			if calls > 50 {
				t.Errorf("with the store: %d calls for 50 distinct tokens", calls)
			}
			if calls > c.limit {
				t.Errorf("with the store: %d calls, past the budget of %d", calls, c.limit)
			}
			if c.limit >= 50 && unavailable > 0 {
				t.Errorf("with the store, a budget for every token: %d × 503", unavailable)
			}
			if c.limit == 5 && ok < 5*1000/50 {
				t.Errorf("with the store, budget 5: only %d × 200 (5 tokens answered, each seen 20 times)", ok)
			}
		})
	}
}
