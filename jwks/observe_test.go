package jwks

import (
	"context"
	"errors"
	"sync"
	"testing"
)

type ctxKey struct{}

// Observe sees each fetch with its trigger and the caller's context, and
// done gets the outcome before the fetch's waiters are released;
// OnRateLimited sees each unknown kid that made no fetch.
func TestObserveFetches(t *testing.T) {
	rk := testRSAKey(t)
	ks := newKeyServer(t, jwkJSON(t, &rk.PublicKey, map[string]any{"kid": "a"}), map[string]any{"kty": "oct", "k": "AAAA", "kid": "hmac"})
	var mu sync.Mutex
	var fetches []Fetch
	var callers []any
	limited := 0
	s := newSet(t, ks.URL, Options{
		Observe: func(ctx context.Context, trigger Trigger) (context.Context, func(Fetch)) {
			mu.Lock()
			callers = append(callers, ctx.Value(ctxKey{}))
			mu.Unlock()
			return ctx, func(f Fetch) {
				mu.Lock()
				fetches = append(fetches, f)
				mu.Unlock()
			}
		},
		OnRateLimited: func(context.Context) { mu.Lock(); limited++; mu.Unlock() },
	})
	ctx := context.WithValue(context.Background(), ctxKey{}, "caller")
	ctx, cancel := context.WithCancel(ctx)
	if _, err := s.Lookup(ctx, "b", "RS256"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown kid: %v", err)
	}
	cancel() // the caller's cancellation does not reach a fetch made for it
	if _, err := s.Lookup(context.Background(), "c", "RS256"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("second unknown kid: %v", err)
	}
	ks.set(func(ks *keyServer) { ks.status = 500 })
	if err := s.Refresh(context.Background()); err == nil {
		t.Fatal("refresh of a failing server succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fetches) < 3 || fetches[0].Trigger != TriggerStart || fetches[1].Trigger != TriggerUnknownKey || fetches[len(fetches)-1].Trigger != TriggerRefresh {
		t.Fatalf("fetches %+v", fetches)
	}
	if f := fetches[1]; f.Status != 200 || f.Keys != 1 || f.Skipped != 1 || f.Err != nil || f.Duration <= 0 {
		t.Errorf("unknown-kid fetch %+v", f)
	}
	if callers[1] != "caller" {
		t.Errorf("the unknown-kid fetch saw caller %v", callers[1])
	}
	if f := fetches[len(fetches)-1]; f.Status != 500 || f.Err == nil || f.Keys != 0 {
		t.Errorf("failed refresh %+v", f)
	}
	if limited != 1 {
		t.Errorf("rate-limited lookups: %d, want 1", limited)
	}
}
