package tokenguard_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// memStore is an in-process SharedStore, for the core's tests; the Redis
// module proves the same behaviour against a real server.
type memStore struct {
	mu      sync.Mutex
	vals    map[string]memVal
	buckets map[string]*memBucket
	now     func() time.Time
	fail    error         // every call fails with it
	hang    bool          // every call blocks until its context ends
	gets    int           // calls to Get
	changed chan struct{} // closed and replaced on every Set
}

type memVal struct {
	v     []byte
	until time.Time
}

type memBucket struct {
	tokens float64
	at     time.Time
}

func newMemStore() *memStore {
	return &memStore{vals: map[string]memVal{}, buckets: map[string]*memBucket{}, now: time.Now, changed: make(chan struct{})}
}

func (m *memStore) enter(ctx context.Context) error {
	m.mu.Lock()
	hang, fail := m.hang, m.fail
	m.mu.Unlock()
	if hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return fail
}

func (m *memStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := m.enter(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	v, ok := m.vals[key]
	if !ok || !m.now().Before(v.until) {
		return nil, nil
	}
	return bytes.Clone(v.v), nil
}

func (m *memStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := m.enter(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.vals[key] = memVal{v: bytes.Clone(value), until: m.now().Add(ttl)}
	close(m.changed)
	m.changed = make(chan struct{})
	return nil
}

func (m *memStore) Delete(ctx context.Context, key string) error {
	if err := m.enter(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.vals, key)
	return nil
}

func (m *memStore) Lease(ctx context.Context, key, holder string, ttl time.Duration) (bool, error) {
	if err := m.enter(ctx); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.vals[key]; ok && m.now().Before(v.until) {
		return false, nil
	}
	m.vals[key] = memVal{v: []byte(holder), until: m.now().Add(ttl)}
	return true, nil
}

func (m *memStore) Release(ctx context.Context, key, holder string) error {
	if err := m.enter(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.vals[key]; ok && string(v.v) == holder {
		delete(m.vals, key)
	}
	return nil
}

func (m *memStore) Wait(ctx context.Context, key string) ([]byte, error) {
	for {
		m.mu.Lock()
		v, ok := m.vals[key]
		ch := m.changed
		m.mu.Unlock()
		if ok && m.now().Before(v.until) {
			return bytes.Clone(v.v), nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, nil
		}
	}
}

func (m *memStore) Take(ctx context.Context, key string, limit int, interval time.Duration) (bool, time.Duration, error) {
	if err := m.enter(ctx); err != nil {
		return false, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	b, ok := m.buckets[key]
	if !ok {
		b = &memBucket{tokens: float64(limit), at: now}
		m.buckets[key] = b
	}
	rate := float64(limit) / float64(interval)
	b.tokens = min(float64(limit), b.tokens+float64(now.Sub(b.at))*rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0, nil
	}
	return false, time.Duration((1 - b.tokens) / rate), nil
}

// entries returns the store's keys holding answers.
func (m *memStore) answerKeys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.vals {
		if strings.HasPrefix(k, "a:") {
			out = append(out, k)
		}
	}
	return out
}

var fleetKey = []byte("0123456789abcdef0123456789abcdef")

// fleetSetup is an authorization server and n guards sharing store.
func fleetSetup(t *testing.T, n int, store tokenguard.SharedStore, fc tokenguard.FleetConfig, logger *logBuffer, mods ...func(*tokenguard.Config)) (*oauthtest.Server, []*tokenguard.Guard) {
	t.Helper()
	as := newAS(t, oauthtest.Options{})
	as.RegisterClient(rsID, rsSecret)
	fc.Store = store
	if fc.Key == nil {
		fc.Key = fleetKey
	}
	guards := make([]*tokenguard.Guard, n)
	for i := range guards {
		cfg := tokenguard.Config{
			Issuer:        as.Issuer,
			Audience:      as.Resource(),
			Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
			Fleet:         fc,
		}
		if logger != nil {
			cfg.Logger = logger.logger()
		}
		for _, mod := range mods {
			mod(&cfg)
		}
		guards[i] = newGuardAt(t, cfg)
	}
	return as, guards
}

// One replica's answer is every replica's: the authorization server is
// asked once per token, not once per replica.
func TestFleetSharesAnswers(t *testing.T) {
	store := newMemStore()
	as, gs := fleetSetup(t, 3, store, tokenguard.FleetConfig{}, nil)
	tok := as.MintOpaque(oauthtest.Claims{"sub": "alice"})
	var seen reached
	for i, g := range gs {
		seen = reached{}
		if w := call(g.Handler(seen.handler()), "Bearer "+tok); w.Code != 200 || seen.principal == nil || seen.principal.Subject != "alice" {
			t.Fatalf("replica %d: %d %+v", i, w.Code, seen.principal)
		}
	}
	if n := as.Requests(oauthtest.EndpointIntrospect); n != 1 {
		t.Errorf("three replicas, one token: %d introspection calls, want 1", n)
	}
	// Inactive answers are shared too.
	dead := "opaque-never-issued-token"
	for _, g := range gs {
		if w := call(g.Handler(okHandler), "Bearer "+dead); w.Code != 401 || w.Header().Get("WWW-Authenticate") != wantChallenge(g, "invalid_token", "token is not active") {
			t.Errorf("unknown token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	if n := as.Requests(oauthtest.EndpointIntrospect); n != 2 {
		t.Errorf("after an unknown token on three replicas: %d calls, want 2", n)
	}
	// No key in the store names the token.
	for _, k := range store.answerKeys() {
		if strings.Contains(k, tok) || strings.Contains(k, dead) {
			t.Errorf("store key %q holds the token", k)
		}
	}
}

// Whoever can write to the store but lacks Fleet.Key cannot make a
// replica accept a token: a forged, altered or moved entry is ignored
// (and logged), and the token is asked about.
func TestAttackFleetStoreWithoutTheKey(t *testing.T) {
	store := newMemStore()
	var logs logBuffer
	as, gs := fleetSetup(t, 2, store, tokenguard.FleetConfig{}, &logs)
	a, b := gs[0], gs[1]

	good := as.MintOpaque(oauthtest.Claims{"sub": "alice", "scope": "read"})
	if w := call(a.Handler(okHandler), "Bearer "+good); w.Code != 200 {
		t.Fatalf("good token: %d", w.Code)
	}
	keys := store.answerKeys()
	if len(keys) != 1 {
		t.Fatalf("store has %d answers", len(keys))
	}
	// 1. Altered: the entry is encrypted, so the store cannot find "read"
	// to make it "admin"; a counter-mode ciphertext can be altered where
	// its plain text is guessed, which the authentication tag catches.
	store.mu.Lock()
	v := store.vals[keys[0]]
	if bytes.Contains(v.v, []byte(`"read"`)) {
		t.Fatal("the store can read the entry")
	}
	altered := bytes.Clone(v.v)
	mid := len(altered) / 2
	for i, c := range []byte(`"read"`) {
		altered[mid+i] ^= c ^ `"admn"`[i]
	}
	store.vals[keys[0]] = memVal{v: altered, until: v.until}
	store.mu.Unlock()
	var seen reached
	if w := call(b.Require(tokenguard.AllScopes("admin"))(seen.handler()), "Bearer "+good); w.Code != 403 || seen.called {
		t.Errorf("altered entry: %d, handler reached %v", w.Code, seen.called)
	}
	if n := as.Requests(oauthtest.EndpointIntrospect); n != 2 {
		t.Errorf("altered entry: %d calls, want 2 (it was ignored and the token asked about)", n)
	}
	if !strings.Contains(logs.String(), "seal does not hold") {
		t.Errorf("no warning of the broken seal: %s", logs.String())
	}

	// 2. Moved: the good token's entry copied to where a made-up token's
	// entry would be, for every key the attacker could guess: it cannot
	// compute the key, so it can only copy the entry over every key.
	forged := "opaque-made-up-token-0001"
	store.mu.Lock()
	good1 := store.vals[keys[0]]
	store.mu.Unlock()
	if w := call(a.Handler(okHandler), "Bearer "+forged); w.Code != 401 {
		t.Fatalf("made-up token: %d", w.Code)
	}
	store.mu.Lock()
	for k := range store.vals {
		if strings.HasPrefix(k, "a:") && k != keys[0] {
			store.vals[k] = good1 // the made-up token's key now holds alice's sealed answer
		}
	}
	store.mu.Unlock()
	if w := call(b.Handler(okHandler), "Bearer "+forged); w.Code != 401 {
		t.Errorf("made-up token with a moved entry: %d", w.Code)
	}
}

// A stored answer is judged as a fresh one: past its exp it refuses.
func TestFleetStoredAnswerIsJudgedAgain(t *testing.T) {
	store := newMemStore()
	as, gs := fleetSetup(t, 2, store, tokenguard.FleetConfig{}, nil, func(c *tokenguard.Config) { c.Leeway = -1 })
	tok := as.MintOpaque(oauthtest.Claims{"exp": time.Now().Add(1500 * time.Millisecond)})
	if w := call(gs[0].Handler(okHandler), "Bearer "+tok); w.Code != 200 {
		t.Fatalf("%d", w.Code)
	}
	// Keep the entry alive past exp, as a store with a wrong clock would.
	store.mu.Lock()
	for k, v := range store.vals {
		v.until = v.until.Add(time.Hour)
		store.vals[k] = v
	}
	store.mu.Unlock()
	time.Sleep(1600 * time.Millisecond)
	// Refused either by the entry's own deadline (the server is then asked
	// and says inactive) or, within it, by exp judged again: never 200.
	g := gs[1]
	w := call(g.Handler(okHandler), "Bearer "+tok)
	got := w.Header().Get("WWW-Authenticate")
	if w.Code != 401 || got != wantChallenge(g, "invalid_token", "token expired") && got != wantChallenge(g, "invalid_token", "token is not active") {
		t.Errorf("stored answer past exp: %d %q", w.Code, got)
	}
}

// Replicas that see a new token at once ask once between them.
func TestFleetCoalescesCalls(t *testing.T) {
	store := newMemStore()
	as, gs := fleetSetup(t, 10, store, tokenguard.FleetConfig{}, nil)
	as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Delay: 200 * time.Millisecond})
	tok := as.MintOpaque(nil)
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
		if c != 200 {
			t.Errorf("replica %d: %d", i, c)
		}
	}
	if n := as.Requests(oauthtest.EndpointIntrospect); n != 1 {
		t.Errorf("ten replicas at once: %d calls, want 1", n)
	}
}

// The fleet keeps to one budget, and a server's 429 heard by one replica
// holds all of them back.
func TestFleetBudgetAndHoldBack(t *testing.T) {
	store := newMemStore()
	as, gs := fleetSetup(t, 2, store, tokenguard.FleetConfig{Budget: 3, BudgetInterval: time.Minute}, nil)
	var ok, unavailable int
	for i := range 6 {
		w := call(gs[i%2].Handler(okHandler), "Bearer "+as.MintOpaque(nil))
		switch w.Code {
		case 200:
			ok++
		case 503:
			unavailable++
			if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
				t.Errorf("503 without Retry-After")
			}
		}
	}
	if ok != 3 || unavailable != 3 || as.Requests(oauthtest.EndpointIntrospect) != 3 {
		t.Errorf("budget 3, six new tokens on two replicas: %d ok, %d 503, %d calls", ok, unavailable, as.Requests(oauthtest.EndpointIntrospect))
	}

	store2 := newMemStore()
	as2, gs2 := fleetSetup(t, 2, store2, tokenguard.FleetConfig{}, nil)
	as2.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: 429, Header: http.Header{"Retry-After": {"30"}}, Times: 1})
	if w := call(gs2[0].Handler(okHandler), "Bearer "+as2.MintOpaque(nil)); w.Code != 503 {
		t.Fatalf("429 upstream: %d", w.Code)
	}
	w := call(gs2[1].Handler(okHandler), "Bearer "+as2.MintOpaque(nil))
	if w.Code != 503 || as2.Requests(oauthtest.EndpointIntrospect) != 1 {
		t.Errorf("the other replica after a 429: %d, %d calls", w.Code, as2.Requests(oauthtest.EndpointIntrospect))
	}
}

// A store that fails or hangs costs each request at most its timeout,
// never an open door: the guards carry on with direct calls.
func TestFleetStoreDownOrSlow(t *testing.T) {
	for _, mode := range []string{"failing", "hanging"} {
		t.Run(mode, func(t *testing.T) {
			store := newMemStore()
			if mode == "failing" {
				store.fail = errors.New("connection refused")
			} else {
				store.hang = true
			}
			var logs logBuffer
			as, gs := fleetSetup(t, 1, store, tokenguard.FleetConfig{Timeout: 20 * time.Millisecond}, &logs)
			g := gs[0]
			start := time.Now()
			if w := call(g.Handler(okHandler), "Bearer "+as.MintOpaque(nil)); w.Code != 200 {
				t.Errorf("valid token: %d", w.Code)
			}
			if w := call(g.Handler(okHandler), "Bearer opaque-forged-token-x"); w.Code != 401 {
				t.Errorf("made-up token: %d", w.Code)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("two requests took %s with the store %s", d, mode)
			}
			if !strings.Contains(logs.String(), "shared store") {
				t.Errorf("no warning: %s", logs.String())
			}
		})
	}
}

// Forget makes a revoked token fail on every replica now, not when its
// cached answer expires.
func TestFleetForget(t *testing.T) {
	store := newMemStore()
	as, gs := fleetSetup(t, 2, store, tokenguard.FleetConfig{}, nil)
	tok := as.MintOpaque(nil)
	for _, g := range gs {
		if w := call(g.Handler(okHandler), "Bearer "+tok); w.Code != 200 {
			t.Fatalf("%d", w.Code)
		}
	}
	as.Revoke(tok)
	if w := call(gs[1].Handler(okHandler), "Bearer "+tok); w.Code != 200 {
		t.Fatalf("cached answer before Forget: %d", w.Code)
	}
	if err := gs[0].Forget(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	// Replica 1 still has its own local entry: Forget reaches the store
	// and the replica it is called on; a webhook calls it on each replica,
	// or the local entry lives at most MaxTTL.
	if w := call(gs[0].Handler(okHandler), "Bearer "+tok); w.Code != 401 {
		t.Errorf("after Forget: %d", w.Code)
	}
	if len(store.answerKeys()) != 1 { // the new refusal, not the old answer
		t.Errorf("store answers after Forget: %d", len(store.answerKeys()))
	}
}

func TestFleetConfigErrors(t *testing.T) {
	for name, fc := range map[string]tokenguard.FleetConfig{
		"no key":        {Store: newMemStore()},
		"short key":     {Store: newMemStore(), Key: []byte("too short")},
		"key, no store": {Key: fleetKey},
		"negative":      {Store: newMemStore(), Key: fleetKey, Budget: -1},
	} {
		if g, err := tokenguard.New(context.Background(), tokenguard.Config{Issuer: "https://as.example.com", Audience: "a", Fleet: fc}); err == nil {
			g.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
}
