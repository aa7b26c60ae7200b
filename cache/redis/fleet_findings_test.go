package tgredis_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Behaviour of the core's fleet code that these tests found to fall short
// of what it documents or what a fleet needs. Each test asserts the
// behaviour it should have; while the core still falls short, it reports
// what it saw and skips, unless TOKENGUARD_FLEET_FINDINGS=1 makes it fail
// (so that a fix in the core turns it into a plain passing test, and the
// run stays green until then).

// finding reports a shortfall of the core: an error with
// TOKENGUARD_FLEET_FINDINGS=1, a skip otherwise.
func finding(t *testing.T, format string, args ...any) {
	t.Helper()
	// The core closed all three (d1f0967): they are plain tests now.
	t.Errorf(format, args...)
}

// Introspection.MaxTTL "caps how long an active answer is cached ...
// Revocation takes effect within it." In a fleet, a replica that takes an
// answer from the store caches it locally for a whole MaxTTL from the
// moment it read it, not from the moment the authorization server gave
// it: an answer read just before its entry expires lives on in that
// replica for nearly 2 × MaxTTL, and a revoked token keeps working there
// that long. (fleetUse passes the stored answer to decide, which caches it
// for maxTTL; the entry's Until is not used to cap it.)
func TestFleetStoredAnswerOutlivesMaxTTL(t *testing.T) {
	srv := needServer(t)
	const maxTTL = 3 * time.Second
	as := newFleetAS(t, oauthtest.Options{})
	rs := newReplicas(t, 2, as, srv, testPrefix(t), tokenguard.FleetConfig{}, func(c *tokenguard.Config) { c.Introspection.MaxTTL = maxTTL })
	a, b := rs[0].g.Handler(okHandler), rs[1].g.Handler(okHandler)

	tok := as.MintOpaque(nil)
	t0 := time.Now()
	if w := serve(a, tok); w.Code != 200 {
		t.Fatalf("a: %d", w.Code)
	}
	as.Revoke(tok) // just after the server's answer: it may be trusted for MaxTTL from then
	time.Sleep(time.Until(t0.Add(maxTTL - 500*time.Millisecond)))
	if w := serve(b, tok); w.Code != 200 { // the entry, alive for 0.5s more
		t.Fatalf("b, from the store: %d", w.Code)
	}
	// MaxTTL + 1.5s after the answer (the entry's Until is rounded up to a
	// whole second, so 1s of slack is the store's).
	time.Sleep(time.Until(t0.Add(maxTTL + 1500*time.Millisecond)))
	wa, wb := serve(a, tok), serve(b, tok)
	if wa.Code != 401 {
		t.Errorf("a, past MaxTTL: %d, want 401", wa.Code)
	}
	if wb.Code != 401 {
		finding(t, "b took the answer from Redis %s after the server gave it and, %s after it (MaxTTL %s), still answers %d for the revoked token: the local entry lives MaxTTL from the read, up to 2 × MaxTTL from the answer",
			maxTTL-500*time.Millisecond, maxTTL+1500*time.Millisecond, maxTTL, wb.Code)
	}
}

// The replicas waiting for a lease holder's answer wait on the answer's
// key only: when the holder ends without an answer (the server failed its
// call with a 500, or a 429 that holds the fleet back; likewise a spent
// budget or an open breaker) and releases its lease, the others still
// wait for the whole LeaseTTL (3s by default) before they ask (each on its
// own: no second lease) or refuse themselves. One failed call becomes
// LeaseTTL of latency for every request with that token across the fleet.
func TestFleetWaitersOutwaitAReleasedLease(t *testing.T) {
	srv := needServer(t)
	const leaseTTL = 3 * time.Second
	for _, c := range []struct {
		name   string
		fc     tokenguard.FleetConfig
		fault  *oauthtest.Fault
		waiter int // what a waiter gets in the end
	}{
		{"holder-got-500", tokenguard.FleetConfig{LeaseTTL: leaseTTL}, &oauthtest.Fault{Status: 500, Delay: 100 * time.Millisecond, Times: 1}, 200},
		{"holder-got-429", tokenguard.FleetConfig{LeaseTTL: leaseTTL}, &oauthtest.Fault{Status: 429, Header: http.Header{"Retry-After": {"30"}}, Delay: 100 * time.Millisecond, Times: 1}, 503},
	} {
		t.Run(c.name, func(t *testing.T) {
			as := newFleetAS(t, oauthtest.Options{})
			rs := newReplicas(t, 3, as, srv, testPrefix(t), c.fc, nil)
			as.SetFault(oauthtest.EndpointIntrospect, c.fault)
			tok := as.MintOpaque(nil)
			var wg sync.WaitGroup
			codes := make([]int, len(rs))
			took := make([]time.Duration, len(rs))
			for i, r := range rs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i > 0 {
						time.Sleep(20 * time.Millisecond) // after replica 0 holds the lease
					}
					start := time.Now()
					codes[i] = serve(r.g.Handler(okHandler), tok).Code
					took[i] = time.Since(start)
				}()
			}
			wg.Wait()
			t.Logf("codes %v, durations %v, %d introspection calls", codes, took, introspections(as))
			if codes[0] != 503 {
				t.Fatalf("the holder: %d, want 503", codes[0])
			}
			for i := 1; i < len(rs); i++ {
				if codes[i] != c.waiter {
					t.Errorf("waiter %d: %d, want %d", i, codes[i], c.waiter)
				}
			}
			slowest := max(took[1], took[2])
			if slowest > time.Second {
				finding(t, "the holder released its lease after ~%s without an answer; the waiters took %s and %s (LeaseTTL %s)", took[0].Round(time.Millisecond), took[1].Round(time.Millisecond), took[2].Round(time.Millisecond), leaseTTL)
			}
		})
	}
}
