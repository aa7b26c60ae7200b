package jwks

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

var (
	rsaKeyOnce sync.Once
	rsaKey     *rsa.PrivateKey
)

func testRSAKey(t testing.TB) *rsa.PrivateKey {
	rsaKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

// jwkJSON serializes pub as a JWK with the given extra members.
func jwkJSON(t testing.TB, pub any, members map[string]any) map[string]any {
	t.Helper()
	k, err := jwk.Import(pub)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for name, v := range members {
		m[name] = v
	}
	return m
}

// keyServer serves a mutable JWKS and counts fetches.
type keyServer struct {
	*httptest.Server
	mu           sync.Mutex
	keys         []map[string]any
	cacheControl string
	status       int
	delay        time.Duration
	hits         atomic.Int64
}

func newKeyServer(t testing.TB, keys ...map[string]any) *keyServer {
	ks := &keyServer{keys: keys}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.hits.Add(1)
		ks.mu.Lock()
		doc, _ := json.Marshal(map[string]any{"keys": ks.keys})
		status, cc, delay := ks.status, ks.cacheControl, ks.delay
		ks.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Write(doc)
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) set(f func(ks *keyServer)) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	f(ks)
}

func newSet(t testing.TB, url string, o Options) *Set {
	t.Helper()
	o.InsecureAllowHTTP = true
	s, err := New(context.Background(), url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestParseSkipsKeysThatCannotVerify(t *testing.T) {
	rk := testRSAKey(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	keys := []map[string]any{
		jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "rsa", "alg": "RS256", "use": "sig"}),
		jwkJSON(t, &ec.PublicKey, map[string]any{"kid": "ec"}),
		jwkJSON(t, edPub, map[string]any{"kid": "ed", "alg": "EdDSA"}),
		{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
		jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "enc", "use": "enc"}),
		{"kty": "RSA", "kid": "small", "n": base64.RawURLEncoding.EncodeToString(small.N.Bytes()), "e": "AQAB"},
		{"kty": "AKP", "kid": "pq", "alg": "ML-DSA-44", "pub": "AAAA"},
		jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "wrongalg", "alg": "ES256"}),
		jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "ops", "key_ops": []string{"encrypt"}}),
		jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "rsaoaep", "alg": "RSA-OAEP"}),
		{"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
	}
	doc, _ := json.Marshal(map[string]any{"keys": keys})
	got, skipped, err := Parse(doc, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range got {
		ids = append(ids, k.ID)
	}
	if fmt.Sprint(ids) != "[rsa ec ed]" {
		t.Errorf("kept %v, want [rsa ec ed]", ids)
	}
	var skippedIDs []string
	for _, s := range skipped {
		skippedIDs = append(skippedIDs, s.ID)
		if s.Reason == "" {
			t.Errorf("skipped %q without a reason", s.ID)
		}
	}
	if want := "[hmac enc small pq wrongalg ops rsaoaep broken]"; fmt.Sprint(skippedIDs) != want {
		t.Errorf("skipped %v, want %s", skippedIDs, want)
	}
}

func TestParseRejectsDocuments(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"not json", "<html>"},
		{"array", `[{"kty":"RSA"}]`},
		{"no keys member", `{"kys":[]}`},
		{"keys not a list", `{"keys":{}}`},
		{"trailing data", `{"keys":[]} {}`},
		{"too many keys", `{"keys":[{},{},{}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Parse([]byte(tc.doc), 2); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestLookupIndex(t *testing.T) {
	rk := testRSAKey(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ks := newKeyServer(t,
		jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "a", "alg": "RS256"}),
		jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "b"}),
		jwkJSON(t, &ec.PublicKey, map[string]any{"kid": "c"}),
	)
	s := newSet(t, ks.URL, Options{UnknownKeyCooldown: time.Hour})
	for _, tc := range []struct {
		kid, alg string
		want     int
	}{
		{"a", "RS256", 1},
		{"a", "PS256", 0}, // the key's own alg binds it
		{"b", "PS384", 1}, // no alg: any RSA algorithm
		{"b", "ES256", 0}, // wrong key type
		{"c", "ES256", 1},
		{"c", "ES384", 0}, // wrong curve
		{"", "RS256", 2},  // no kid: every fitting key
		{"", "ES256", 1},
		{"", "EdDSA", 0},
	} {
		keys, err := s.Lookup(context.Background(), tc.kid, tc.alg)
		if len(keys) != tc.want {
			t.Errorf("Lookup(%q, %s) = %d keys (err %v), want %d", tc.kid, tc.alg, len(keys), err, tc.want)
		}
		if tc.want == 0 && !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Lookup(%q, %s) err = %v, want ErrUnknownKey", tc.kid, tc.alg, err)
		}
	}
}

func TestUnknownKidRefreshesOnce(t *testing.T) {
	rk := testRSAKey(t)
	ks := newKeyServer(t, jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "old"}))
	s := newSet(t, ks.URL, Options{})
	if got := ks.hits.Load(); got != 1 {
		t.Fatalf("New fetched %d times, want 1", got)
	}
	ks.set(func(ks *keyServer) {
		ks.keys = append(ks.keys, jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "new"}))
		ks.delay = 50 * time.Millisecond // keep the flight open while the herd arrives
	})
	var wg sync.WaitGroup
	var found atomic.Int64
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if keys, err := s.Lookup(context.Background(), "new", "RS256"); err == nil && len(keys) == 1 {
				found.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := ks.hits.Load(); got != 2 {
		t.Errorf("200 concurrent lookups of a new kid made %d fetches in all, want 2 (start-up + one)", got)
	}
	if found.Load() != 200 {
		t.Errorf("%d of 200 lookups found the new key", found.Load())
	}
}

func TestRandomKidFloodIsRateLimited(t *testing.T) {
	rk := testRSAKey(t)
	ks := newKeyServer(t, jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "k"}))
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	s := newSet(t, ks.URL, Options{Now: clock, UnknownKeyCooldown: 5 * time.Second})

	unknown := 0
	for i := range 1000 {
		if i%100 == 0 {
			advance(time.Second) // 1,000 requests over 10 simulated seconds
		}
		_, err := s.Lookup(context.Background(), fmt.Sprintf("random-%d", i), "RS256")
		if errors.Is(err, ErrUnknownKey) {
			unknown++
		}
	}
	if unknown != 1000 {
		t.Errorf("%d of 1000 random kids reported unknown", unknown)
	}
	// 10s of flood with a 5s cooldown: at most 2 refreshes, plus start-up.
	if got := ks.hits.Load(); got > 3 {
		t.Errorf("flood made %d fetches, want at most 3", got)
	}

	// A key the server really rotated in is accepted once the window passes.
	ks.set(func(ks *keyServer) {
		ks.keys = append(ks.keys, jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "rotated"}))
	})
	advance(5 * time.Second)
	if keys, err := s.Lookup(context.Background(), "rotated", "RS256"); err != nil || len(keys) != 1 {
		t.Errorf("rotated key after the cooldown: %d keys, %v", len(keys), err)
	}
}

func TestRefreshReplacesSetAndKeepsLastGoodOnFailure(t *testing.T) {
	rk := testRSAKey(t)
	ks := newKeyServer(t, jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "a"}))
	var errs atomic.Int64
	s := newSet(t, ks.URL, Options{OnError: func(error) { errs.Add(1) }})

	ks.set(func(ks *keyServer) { ks.keys = []map[string]any{jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "b"})} })
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.current("a", "RS256"); len(keys) != 0 {
		t.Error("a key removed from the JWKS still verifies after a refresh")
	}

	ks.set(func(ks *keyServer) { ks.status = http.StatusInternalServerError })
	if err := s.Refresh(context.Background()); err == nil {
		t.Fatal("refresh against a 500 succeeded")
	}
	if keys, err := s.Lookup(context.Background(), "b", "RS256"); err != nil || len(keys) != 1 {
		t.Errorf("last good set lost after a failed refresh: %d keys, %v", len(keys), err)
	}
	if s.LastError() == nil || errs.Load() == 0 {
		t.Error("failed refresh not reported")
	}
}

func TestUnknownKidWhileServerDownIsUnavailable(t *testing.T) {
	rk := testRSAKey(t)
	ks := newKeyServer(t, jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "a"}))
	s := newSet(t, ks.URL, Options{})
	ks.set(func(ks *keyServer) { ks.status = http.StatusServiceUnavailable })
	_, err := s.Lookup(context.Background(), "new", "RS256")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unknown kid with the server down: %v, want ErrUnavailable", err)
	}
	// Within the cooldown the failure is still what decides.
	if _, err := s.Lookup(context.Background(), "new2", "RS256"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second lookup within the cooldown: %v, want ErrUnavailable", err)
	}
}

func TestStaleSetBecomesUnavailable(t *testing.T) {
	rk := testRSAKey(t)
	ks := newKeyServer(t, jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "a"}))
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newSet(t, ks.URL, Options{Now: clock, MaxStaleness: time.Hour})
	if err := s.Usable(clock()); err != nil {
		t.Fatalf("fresh set: Usable = %v", err)
	}
	if keys := s.Keys(); len(keys) != 1 || !s.Has(keys[0].Thumbprint) || s.Has("") || s.Has(keys[0].Thumbprint+"x") {
		t.Fatalf("Has: keys %d, or a thumbprint not in the set is reported", len(keys))
	}
	ks.set(func(ks *keyServer) { ks.status = http.StatusBadGateway })
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if _, err := s.Lookup(context.Background(), "a", "RS256"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("stale set: %v, want ErrUnavailable", err)
	}
	if err := s.Usable(clock()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("stale set: Usable = %v, want ErrUnavailable", err)
	}
	s.Close()
	if err := s.Usable(clock()); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed set: Usable = %v, want ErrClosed", err)
	}
}

func TestNewFailsClearly(t *testing.T) {
	ks := newKeyServer(t)
	ks.set(func(ks *keyServer) { ks.status = http.StatusNotFound })
	_, err := New(context.Background(), ks.URL, Options{InsecureAllowHTTP: true})
	if err == nil || !containsAll(err.Error(), ks.URL, "404") {
		t.Errorf("New against a 404: %v", err)
	}
	if _, err := New(context.Background(), "http://127.0.0.1:1/jwks", Options{}); err == nil {
		t.Error("plain http accepted without InsecureAllowHTTP")
	}
	if got := ks.hits.Load(); got != 1 {
		t.Errorf("server saw %d requests, want 1", got)
	}
}

func TestLookupHonoursCallerContext(t *testing.T) {
	rk := testRSAKey(t)
	ks := newKeyServer(t, jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "a"}))
	s := newSet(t, ks.URL, Options{})
	ks.set(func(ks *keyServer) { ks.delay = 2 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Lookup(ctx, "new", "RS256")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Lookup waited %s past its context", d)
	}
}

func TestInterval(t *testing.T) {
	s := &Set{opts: Options{}}
	s.opts.defaults()
	for _, tc := range []struct {
		cc   string
		want time.Duration
	}{
		{"", time.Hour},
		{"max-age=300", 5 * time.Minute},
		{"public, max-age=10", time.Minute},
		{"max-age=999999999999", time.Hour},
		{"no-store", time.Minute},
		{"private, no-cache", time.Minute},
		{"max-age=abc", time.Hour},
		{"max-age=-5", time.Hour},
	} {
		if got := s.interval(tc.cc); got != tc.want {
			t.Errorf("interval(%q) = %s, want %s", tc.cc, got, tc.want)
		}
	}
}

func TestCloseStopsEverything(t *testing.T) {
	rk := testRSAKey(t)
	ks := newKeyServer(t, jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "a"}))
	before := runtime.NumGoroutine()
	for range 5 {
		s, err := New(context.Background(), ks.URL, Options{InsecureAllowHTTP: true, MinRefreshInterval: time.Millisecond, MaxRefreshInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ks.set(func(ks *keyServer) { ks.delay = time.Second })
		go s.Lookup(context.Background(), "x", "RS256") // a flight in progress at Close
		time.Sleep(20 * time.Millisecond)
		start := time.Now()
		s.Close()
		s.Close()
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("Close took %s with a fetch in flight", d)
		}
		ks.set(func(ks *keyServer) { ks.delay = 0 })
		if _, err := s.Lookup(context.Background(), "y", "RS256"); err == nil {
			t.Error("lookup after Close succeeded")
		}
	}
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after Close, %d before\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// A refresh that yields no usable key (an empty set, or only keys that
// cannot verify) is a failed refresh: the last good set stays and the
// failure is reported. Before, it replaced the set and every valid token
// got "unknown key", with nothing logged.
func TestUnusableSetIsAFailedRefresh(t *testing.T) {
	rk := testRSAKey(t)
	good := jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "a"})
	for name, keys := range map[string][]map[string]any{
		"empty": {},
		"only unusable": {
			{"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
			jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "e", "use": "enc"}),
		},
	} {
		t.Run(name, func(t *testing.T) {
			ks := newKeyServer(t, good)
			var errs []error
			var mu sync.Mutex
			refreshed := 0
			s := newSet(t, ks.URL, Options{
				OnError:   func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() },
				OnRefresh: func([]Key) { mu.Lock(); refreshed++; mu.Unlock() },
			})
			ks.set(func(ks *keyServer) { ks.keys = keys })
			if err := s.Refresh(context.Background()); !errors.Is(err, ErrNoUsableKeys) {
				t.Fatalf("refresh to an unusable set: %v, want ErrNoUsableKeys", err)
			}
			if keys, err := s.Lookup(context.Background(), "a", "RS256"); err != nil || len(keys) != 1 {
				t.Errorf("the last good set was replaced: %d keys, %v", len(keys), err)
			}
			mu.Lock()
			defer mu.Unlock()
			if refreshed != 1 || len(errs) == 0 || !errors.Is(errs[len(errs)-1], ErrNoUsableKeys) {
				t.Errorf("OnRefresh %d times (want 1: the first fetch), errors %v", refreshed, errs)
			}
			// At start-up there is no last good set: New fails, saying why.
			if _, err := New(context.Background(), ks.URL, Options{InsecureAllowHTTP: true}); !errors.Is(err, ErrNoUsableKeys) || !strings.Contains(err.Error(), ks.URL) {
				t.Errorf("New with an unusable set: %v", err)
			}
		})
	}
}

// RetryIn tells when the next fetch will be tried: the unknown-kid
// cooldown, pushed out by a server's Retry-After, and never after the
// next background refresh.
func TestRetryIn(t *testing.T) {
	rk := testRSAKey(t)
	var retryAfter atomic.Value
	retryAfter.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ra := retryAfter.Load().(string); ra != "" {
			w.Header().Set("Retry-After", ra)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		doc, _ := json.Marshal(map[string]any{"keys": []any{jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "a"})}})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(doc)
	}))
	t.Cleanup(srv.Close)
	s := newSet(t, srv.URL, Options{UnknownKeyCooldown: 5 * time.Second})
	if d := s.RetryIn(time.Now()); d > 10*time.Minute || d < time.Second {
		t.Errorf("after a good fetch: %s, want at most the background refresh (10 min)", d)
	}
	if _, err := s.Lookup(context.Background(), "new", "RS256"); !errors.Is(err, ErrUnknownKey) {
		t.Fatal(err)
	}
	if d := s.RetryIn(time.Now()); d > 5*time.Second {
		t.Errorf("after an unknown-kid fetch: %s, want the cooldown (5 s)", d)
	}
	retryAfter.Store("120")
	time.Sleep(10 * time.Millisecond)
	s.mu.Lock()
	s.lastKidTrip = time.Time{} // as if the cooldown had passed
	s.mu.Unlock()
	if _, err := s.Lookup(context.Background(), "newer", "RS256"); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	if d := s.RetryIn(time.Now()); d < 110*time.Second || d > 121*time.Second {
		t.Errorf("after a 503 with Retry-After 120: %s", d)
	}
}

// A set past MaxStaleness starts no unknown-kid refresh, so RetryIn is the
// background refresh's time, not a second.
func TestRetryInWhenStale(t *testing.T) {
	rk := testRSAKey(t)
	ks := newKeyServer(t, jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "a"}))
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newSet(t, ks.URL, Options{Now: clock, MaxStaleness: time.Minute, MinRefreshInterval: 10 * time.Minute, MaxRefreshInterval: 10 * time.Minute})
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if d := s.RetryIn(clock()); d < 7*time.Minute || d > 8*time.Minute+time.Second {
		t.Errorf("stale set: RetryIn %s, want the background refresh's 8 min", d)
	}
}
