package tokenguard_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// The attacker of these tests can read and write the fleet's store (a
// compromised cache host, a Redis shared with other services) but does
// not hold Fleet.Key.

// snapshot copies the store's entries whose keys start with prefix.
func (m *memStore) snapshot(prefix string) map[string]memVal {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]memVal{}
	for k, v := range m.vals {
		if strings.HasPrefix(k, prefix) {
			out[k] = memVal{v: bytes.Clone(v.v), until: v.until}
		}
	}
	return out
}

// restore writes entries back, alive for a day whatever their TTL was (a
// store that ignores TTLs, or an attacker writing them again).
func (m *memStore) restore(entries map[string]memVal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range entries {
		m.vals[k] = memVal{v: bytes.Clone(v.v), until: m.now().Add(24 * time.Hour)}
	}
	close(m.changed)
	m.changed = make(chan struct{})
}

// values returns every value the store holds.
func (m *memStore) values() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out [][]byte
	for _, v := range m.vals {
		out = append(out, bytes.Clone(v.v))
	}
	return out
}

// The store can read what it holds: the introspection answers must not
// be readable there. An answer names the user (RFC 7662 §5: privacy-
// sensitive), and a server may echo the token itself in it (which the
// Guard already keeps out of its logs): in plain text in the store, a
// reader of the store could take a live token.
func TestAttackFleetStoreReadsNoAnswer(t *testing.T) {
	ts := newRecordingAS(t, false)
	ts.setAnswer(func(iss, token string) map[string]any {
		return map[string]any{"active": true, "iss": iss, "aud": "api://x", "sub": "alice-7f3c", "email": "alice@example.com", "username": token}
	})
	store := newMemStore()
	cfg := tokenguard.Config{Issuer: ts.issuer(""), Audience: "api://x",
		Introspection: tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"},
		Fleet:         tokenguard.FleetConfig{Store: store, Key: fleetKey}}
	a, b := newGuardAt(t, cfg), newGuardAt(t, cfg)
	const tok = "opaque-secret-token-0123456789abcdefghijklmnop"
	var seen reached
	if w := call(a.Handler(seen.handler()), "Bearer "+tok); w.Code != 200 || seen.principal.Subject != "alice-7f3c" {
		t.Fatalf("%d %+v", w.Code, seen.principal)
	}
	if len(store.answerKeys()) != 1 {
		t.Fatalf("store answers: %d", len(store.answerKeys()))
	}
	for _, v := range store.values() {
		for _, secret := range []string{tok, tok[10:30], "alice@example.com", "alice-7f3c", `"active"`} {
			if bytes.Contains(v, []byte(secret)) {
				t.Errorf("the store can read %q in an entry", secret)
			}
		}
	}
	// The entry still serves the fleet.
	seen = reached{}
	if w := call(b.Handler(seen.handler()), "Bearer "+tok); w.Code != 200 || seen.principal.Subject != "alice-7f3c" {
		t.Errorf("the other replica: %d %+v", w.Code, seen.principal)
	}
	if n := len(ts.requests("/introspect")); n != 1 {
		t.Errorf("%d introspection calls, want 1", n)
	}
}

// An entry read from the store just before its deadline must not live on
// in the reader's cache for another MaxTTL: a revoked token would then be
// accepted for up to twice MaxTTL (and an attacker who writes the entry
// back keeps it so on every replica in turn).
func TestAttackFleetAnswerReadLateOutlivesMaxTTL(t *testing.T) {
	clk := newFakeClock()
	store := newMemStore()
	store.now = clk.Now
	as, gs := fleetSetup(t, 2, store, tokenguard.FleetConfig{}, nil, func(c *tokenguard.Config) {
		c.Now = clk.Now
		c.Introspection.MaxTTL = time.Minute
	})
	tok := as.MintOpaque(nil)
	if w := call(gs[0].Handler(okHandler), "Bearer "+tok); w.Code != 200 {
		t.Fatalf("%d", w.Code)
	}
	as.Revoke(tok)
	clk.Advance(50 * time.Second)
	// Within MaxTTL of the answer: the fleet may still accept it.
	if w := call(gs[1].Handler(okHandler), "Bearer "+tok); w.Code != 200 {
		t.Fatalf("within MaxTTL: %d", w.Code)
	}
	clk.Advance(15 * time.Second)
	if w := call(gs[1].Handler(okHandler), "Bearer "+tok); w.Code != 401 {
		t.Errorf("revoked token %s after the answer, MaxTTL 1m: %d", 65*time.Second, w.Code)
	}
}

// A replica whose clock runs ahead writes deadlines too far out; a reader
// does not keep an answer longer than its own MaxTTL allows.
func TestAttackFleetAnswerFromAFastClock(t *testing.T) {
	fast, clk := newFakeClock(), newFakeClock()
	fast.Advance(10 * time.Minute)
	store := newMemStore() // on real time: the entry stays
	as := newAS(t, oauthtest.Options{TokenLifetime: time.Hour})
	as.RegisterClient(rsID, rsSecret)
	mk := func(now func() time.Time) *tokenguard.Guard {
		return newGuardAt(t, tokenguard.Config{Issuer: as.Issuer, Audience: as.Resource(), Now: now,
			Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret, MaxTTL: time.Minute},
			Fleet:         tokenguard.FleetConfig{Store: store, Key: fleetKey}})
	}
	a, b := mk(fast.Now), mk(clk.Now)
	tok := as.MintOpaque(nil)
	if w := call(a.Handler(okHandler), "Bearer "+tok); w.Code != 200 {
		t.Fatalf("%d", w.Code)
	}
	as.Revoke(tok)
	clk.Advance(2 * time.Minute)
	if w := call(b.Handler(okHandler), "Bearer "+tok); w.Code != 401 {
		t.Errorf("revoked token, answer 2m old by the reader's clock, MaxTTL 1m: %d", w.Code)
	}
}

// Forget must reach the entries of a pattern tenant that this replica no
// longer keeps (evicted from MaxPatternIssuers) but the fleet still uses.
func TestAttackFleetForgetMissesAnEvictedTenant(t *testing.T) {
	ts := newRecordingAS(t, true)
	var revoked sync.Map
	ts.setAnswer(func(iss, token string) map[string]any {
		tenant, _, _ := strings.Cut(token, "_")
		if _, ok := revoked.Load(token); ok || iss != ts.issuer(tenant) {
			return nil
		}
		return map[string]any{"active": true, "iss": iss, "aud": "https://api.example", "sub": tenant + "-user"}
	})
	store := newMemStore()
	cfg := tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{{
			Issuer: ts.issuer("*"), Audience: "https://api.example", Introspect: tokenguard.IssuerIntrospectOn,
			Introspection: &tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"},
		}},
		RouteOpaque: func(token string) string {
			tenant, _, _ := strings.Cut(token, "_")
			return ts.issuer(tenant)
		},
		MaxPatternIssuers: 1,
		Fleet:             tokenguard.FleetConfig{Store: store, Key: fleetKey},
	}
	a, b := newGuardAt(t, cfg), newGuardAt(t, cfg)
	acme, globex := "acme_0123456789abcdefghijklmn", "globex_0123456789abcdefghijklmn"
	for _, tok := range []string{acme, globex} { // globex evicts acme from a
		if w := call(a.Handler(okHandler), "Bearer "+tok); w.Code != 200 {
			t.Fatalf("%s: %d", tok, w.Code)
		}
	}
	revoked.Store(acme, true)
	if err := a.Forget(context.Background(), acme); err != nil {
		t.Fatal(err)
	}
	for name, g := range map[string]*tokenguard.Guard{"the replica that forgot": a, "another replica": b} {
		if w := call(g.Handler(okHandler), "Bearer "+acme); w.Code != 401 {
			t.Errorf("%s, revoked and forgotten token of an evicted tenant: %d", name, w.Code)
		}
	}
}

// Forget is undone by writing the sealed entry back: the replica that was
// told of the revocation takes the token again from the old answer.
func TestAttackFleetReplayUndoesForget(t *testing.T) {
	store := newMemStore()
	as, gs := fleetSetup(t, 1, store, tokenguard.FleetConfig{}, nil)
	g := gs[0]
	tok := as.MintOpaque(nil)
	if w := call(g.Handler(okHandler), "Bearer "+tok); w.Code != 200 {
		t.Fatalf("%d", w.Code)
	}
	saved := store.snapshot("a:")
	as.Revoke(tok)
	if err := g.Forget(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	store.restore(saved)
	if w := call(g.Handler(okHandler), "Bearer "+tok); w.Code != 401 {
		t.Errorf("revoked, forgotten, its old entry written back: %d", w.Code)
	}
}

// A Forget while the token's introspection is in flight: the answer that
// flight brings back (from before the revocation) is not kept, here or in
// the store.
func TestAttackFleetForgetDuringAFlight(t *testing.T) {
	ts := newRecordingAS(t, false)
	var revoked, slow atomic.Bool
	slow.Store(true)
	ts.setAnswer(func(iss, token string) map[string]any {
		active := !revoked.Load()
		if slow.Swap(false) {
			time.Sleep(300 * time.Millisecond)
		}
		if !active {
			return nil
		}
		return map[string]any{"active": true, "iss": iss, "aud": "api://x"}
	})
	store := newMemStore()
	cfg := tokenguard.Config{Issuer: ts.issuer(""), Audience: "api://x",
		Introspection: tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"},
		Fleet:         tokenguard.FleetConfig{Store: store, Key: fleetKey}}
	a, b := newGuardAt(t, cfg), newGuardAt(t, cfg)
	const tok = "opaque-token-in-flight-0123456789abcdef"
	done := make(chan int)
	go func() { done <- call(a.Handler(okHandler), "Bearer "+tok).Code }()
	time.Sleep(100 * time.Millisecond)
	revoked.Store(true)
	if err := a.Forget(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 200 {
		t.Logf("the request in flight: %d", code)
	}
	for name, g := range map[string]*tokenguard.Guard{"the replica that forgot": a, "another replica": b} {
		if w := call(g.Handler(okHandler), "Bearer "+tok); w.Code != 401 {
			t.Errorf("%s, after Forget: %d", name, w.Code)
		}
	}
}

// takeStore answers Take as a hostile store would.
type takeStore struct {
	*memStore
	wait  time.Duration
	delay time.Duration // before answering, whatever the context
}

func (s *takeStore) Take(ctx context.Context, key string, limit int, interval time.Duration) (bool, time.Duration, error) {
	time.Sleep(s.delay)
	if s.wait > 0 {
		return false, s.wait, nil
	}
	return s.memStore.Take(ctx, key, limit, interval)
}

// A store that says the budget is spent "for a century" must not make the
// Guard tell its clients to come back in a century: the budget refills
// within BudgetInterval.
func TestAttackFleetStoreSetsRetryAfter(t *testing.T) {
	store := &takeStore{memStore: newMemStore(), wait: 100 * 365 * 24 * time.Hour}
	as, gs := fleetSetup(t, 1, store, tokenguard.FleetConfig{Budget: 5, BudgetInterval: time.Minute}, nil)
	w := call(gs[0].Handler(okHandler), "Bearer "+as.MintOpaque(nil))
	ra, _ := strconv.Atoi(w.Header().Get("Retry-After"))
	if w.Code != 503 || ra < 1 || ra > 60 {
		t.Errorf("budget spent by the store's word: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

// A replica whose clock runs a day ahead hears a 429 Retry-After: 30 and
// shares the hold-back: the others are not held back for a day.
func TestAttackFleetHoldBackFromAFastClock(t *testing.T) {
	fast := newFakeClock()
	fast.Advance(24 * time.Hour)
	store := newMemStore()
	as := newAS(t, oauthtest.Options{})
	as.RegisterClient(rsID, rsSecret)
	mk := func(now func() time.Time) *tokenguard.Guard {
		return newGuardAt(t, tokenguard.Config{Issuer: as.Issuer, Audience: as.Resource(), Now: now,
			Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
			Fleet:         tokenguard.FleetConfig{Store: store, Key: fleetKey}})
	}
	a, b := mk(fast.Now), mk(nil)
	as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: 429, Header: http.Header{"Retry-After": {"30"}}, Times: 1})
	if w := call(a.Handler(okHandler), "Bearer "+as.MintOpaque(nil)); w.Code != 503 {
		t.Fatalf("429: %d", w.Code)
	}
	w := call(b.Handler(okHandler), "Bearer "+as.MintOpaque(nil))
	ra, _ := strconv.Atoi(w.Header().Get("Retry-After"))
	if w.Code == 503 && ra > 5*60 {
		t.Errorf("held back by a hold-back a day long: Retry-After %d", ra)
	}
}

// hugeStore answers every Get of an answer with a huge value.
type hugeStore struct {
	*memStore
	huge []byte
}

func (s *hugeStore) Get(ctx context.Context, key string) ([]byte, error) {
	if strings.HasPrefix(key, "a:") {
		return s.huge, nil
	}
	return s.memStore.Get(ctx, key)
}

// A huge value in the store (Redis takes 512 MiB) costs each request that
// reads it no work proportional to its size: no entry the Guard writes is
// that large, so it is refused unread.
func TestAttackFleetHugeEntry(t *testing.T) {
	store := &hugeStore{memStore: newMemStore(), huge: make([]byte, 128<<20)}
	start := time.Now()
	m := hmac.New(sha256.New, fleetKey)
	m.Write(store.huge)
	m.Sum(nil)
	macOnce := time.Since(start)
	as, gs := fleetSetup(t, 1, store, tokenguard.FleetConfig{}, nil)
	h := gs[0].Handler(okHandler)
	call(h, "Bearer "+as.MintOpaque(nil)) // warm up connections
	const n = 4
	start = time.Now()
	for range n {
		if w := call(h, "Bearer "+as.MintOpaque(nil)); w.Code != 200 {
			t.Fatalf("%d", w.Code)
		}
	}
	if d := time.Since(start); d > macOnce {
		t.Errorf("%d requests reading a 128 MiB entry took %s; one MAC over it takes %s", n, d, macOnce)
	}
}

// When the replica that holds the lease cannot get an answer (the fleet's
// budget is spent, the server fails), the replicas waiting for it are told
// at once, not after LeaseTTL each.
func TestAttackFleetWaitersLearnTheHolderFailed(t *testing.T) {
	store := &takeStore{memStore: newMemStore(), delay: 300 * time.Millisecond}
	as, gs := fleetSetup(t, 3, store, tokenguard.FleetConfig{Budget: 1, BudgetInterval: time.Hour, LeaseTTL: 3 * time.Second, Timeout: time.Second}, nil)
	if w := call(gs[0].Handler(okHandler), "Bearer "+as.MintOpaque(nil)); w.Code != 200 {
		t.Fatalf("first token: %d", w.Code)
	}
	tok := as.MintOpaque(nil)
	start := time.Now()
	var wg sync.WaitGroup
	codes := make([]int, len(gs))
	for i, g := range gs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = call(g.Handler(okHandler), "Bearer "+tok).Code
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 503 {
			t.Errorf("replica %d: %d, want 503 (budget spent)", i, c)
		}
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("three replicas, budget spent: answered after %s (LeaseTTL 3s)", d)
	}
}

// leaseStore never grants a lease (a hostile store, or one whose every
// lease key an attacker holds): a new token then costs LeaseTTL on every
// request, once the fleet's documented cost of a bad store (Timeout per
// call) is exceeded.
type leaseStore struct{ *memStore }

func (s *leaseStore) Lease(context.Context, string, string, time.Duration) (bool, error) {
	return false, nil
}

func TestAttackFleetStoreHoldsEveryLease(t *testing.T) {
	store := &leaseStore{newMemStore()}
	var logs logBuffer
	as, gs := fleetSetup(t, 1, store, tokenguard.FleetConfig{LeaseTTL: time.Second}, &logs)
	h := gs[0].Handler(okHandler)
	start := time.Now()
	for i := range 4 {
		if w := call(h, "Bearer "+as.MintOpaque(nil)); w.Code != 200 {
			t.Fatalf("token %d: %d", i, w.Code)
		}
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("four new tokens with every lease held: %s (LeaseTTL 1s)", d)
	}
	if !strings.Contains(logs.String(), "shared store") {
		t.Errorf("no warning: %s", logs.String())
	}
}

// A store that hangs costs a request one Timeout, not one per call to it
// (a new token makes four or five): after the first call timed out, the
// flight carries on without the store.
func TestAttackFleetHungStoreCostsOneTimeout(t *testing.T) {
	store := newMemStore()
	const timeout = 100 * time.Millisecond
	as, gs := fleetSetup(t, 1, store, tokenguard.FleetConfig{Timeout: timeout, Budget: 100}, nil)
	h := gs[0].Handler(okHandler)
	call(h, "Bearer "+as.MintOpaque(nil)) // warm up connections
	store.mu.Lock()
	store.hang = true
	store.mu.Unlock()
	for _, c := range []struct {
		token string
		want  int
	}{{as.MintOpaque(nil), 200}, {"opaque-made-up-token-hung-store", 401}} {
		start := time.Now()
		if w := call(h, "Bearer "+c.token); w.Code != c.want {
			t.Errorf("store hung: %d, want %d", w.Code, c.want)
		}
		if d := time.Since(start); d > 2*timeout+50*time.Millisecond {
			t.Errorf("store hung: a request took %s (Fleet.Timeout %s)", d, timeout)
		}
	}
}

// What held: a replayed hold-back entry holds nothing back past its time;
// a refusal written back after its deadline refuses nothing; an entry of
// one issuer moved to another's key for the same token is ignored.
func TestAttackFleetReplaysThatHold(t *testing.T) {
	t.Run("hold-back", func(t *testing.T) {
		clk := newFakeClock()
		store := newMemStore()
		store.now = clk.Now
		as, gs := fleetSetup(t, 2, store, tokenguard.FleetConfig{}, nil, func(c *tokenguard.Config) { c.Now = clk.Now })
		as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: 429, Header: http.Header{"Retry-After": {"2"}}, Times: 1})
		if w := call(gs[0].Handler(okHandler), "Bearer "+as.MintOpaque(nil)); w.Code != 503 {
			t.Fatalf("429: %d", w.Code)
		}
		saved := store.snapshot("h:")
		if len(saved) != 1 {
			t.Fatalf("hold-back entries: %d", len(saved))
		}
		clk.Advance(3 * time.Second)
		store.restore(saved)
		if w := call(gs[1].Handler(okHandler), "Bearer "+as.MintOpaque(nil)); w.Code != 200 {
			t.Errorf("hold-back written back after its time: %d", w.Code)
		}
	})
	t.Run("refusal", func(t *testing.T) {
		clk := newFakeClock()
		store := newMemStore()
		store.now = clk.Now
		as := newAS(t, oauthtest.Options{Now: clk.Now})
		as.RegisterClient(rsID, rsSecret)
		g := newGuardAt(t, tokenguard.Config{Issuer: as.Issuer, Audience: as.Resource(), Now: clk.Now,
			Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
			Fleet:         tokenguard.FleetConfig{Store: store, Key: fleetKey}})
		tok := as.MintOpaque(oauthtest.Claims{"nbf": clk.Now().Add(40 * time.Second).Unix()})
		if w := call(g.Handler(okHandler), "Bearer "+tok); w.Code != 401 {
			t.Fatalf("not yet valid: %d", w.Code)
		}
		saved := store.snapshot("a:")
		clk.Advance(45 * time.Second) // past NegativeTTL (30s), and nbf
		store.restore(saved)
		if w := call(g.Handler(okHandler), "Bearer "+tok); w.Code != 200 {
			t.Errorf("refusal written back after its deadline: %d", w.Code)
		}
	})
	t.Run("other issuer", func(t *testing.T) {
		a := newAS(t, oauthtest.Options{})
		a.RegisterClient(rsID, rsSecret)
		b := newAS(t, oauthtest.Options{})
		b.RegisterClient(rsID, rsSecret)
		var route atomic.Value
		route.Store(b.Issuer)
		store := newMemStore()
		mk := func() *tokenguard.Guard {
			own := &tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret}
			return newGuardAt(t, tokenguard.Config{
				Issuers: []tokenguard.TrustedIssuer{
					{Issuer: a.Issuer, Audience: a.Resource(), Introspection: own},
					{Issuer: b.Issuer, Audience: a.Resource(), Introspection: own},
				},
				RouteOpaque: func(string) string { return route.Load().(string) },
				Fleet:       tokenguard.FleetConfig{Store: store, Key: fleetKey},
			})
		}
		tok := a.MintOpaque(nil) // a's; b says inactive
		if w := call(mk().Handler(okHandler), "Bearer "+tok); w.Code != 401 {
			t.Fatalf("at b: %d", w.Code)
		}
		atB := store.answerKeys()
		route.Store(a.Issuer)
		if w := call(mk().Handler(okHandler), "Bearer "+tok); w.Code != 200 {
			t.Fatalf("at a: %d", w.Code)
		}
		var atA string
		for _, k := range store.answerKeys() {
			if k != atB[0] {
				atA = k
			}
		}
		store.mu.Lock()
		store.vals[atB[0]] = memVal{v: store.vals[atA].v, until: time.Now().Add(time.Hour)}
		store.mu.Unlock()
		route.Store(b.Issuer)
		if w := call(mk().Handler(okHandler), "Bearer "+tok); w.Code != 401 {
			t.Errorf("a's answer at b's key: %d", w.Code)
		}
	})
}
