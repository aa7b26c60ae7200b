//go:build unix

package tgredis_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// A Redis that hangs (SIGSTOP: it accepts connections and answers
// nothing): every store call ends at Fleet.Timeout, the answers stay
// right (direct calls), and once it goes on the replicas share again. A
// new token makes 4 store calls (5 with a Budget), each waiting out the
// Timeout, so a request loses up to 4-5 × Timeout, not one Timeout: the
// core does not carry on "as if it had no store" after the first call of
// a request timed out (reported by the finding at the end).
func TestFleetRedisHangs(t *testing.T) {
	needServer(t)
	srv, err := startServer(0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	const timeout = 50 * time.Millisecond
	var worst time.Duration
	for _, budget := range []int{0, 100} {
		as := newFleetAS(t, oauthtest.Options{})
		rs := newReplicas(t, 2, as, srv, testPrefix(t), tokenguard.FleetConfig{Timeout: timeout, Budget: budget}, nil)
		if w := serve(rs[0].g.Handler(okHandler), as.MintOpaque(nil)); w.Code != 200 {
			t.Fatalf("before the hang: %d", w.Code)
		}
		if err := srv.signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		rs[0].store.reset()
		for i := range 3 {
			for _, c := range []struct {
				token string
				want  int
			}{{as.MintOpaque(nil), 200}, {"opaque-made-up-hang-" + string(rune('a'+i)), 401}} {
				start := time.Now()
				code := serve(rs[0].g.Handler(okHandler), c.token).Code
				took := time.Since(start)
				n, spent, slowest := rs[0].store.reset()
				t.Logf("budget %d, Redis hung, want %d: %d after %s; %d store calls, %s in all, slowest %s", budget, c.want, code, took.Round(time.Microsecond), n, spent.Round(time.Microsecond), slowest.Round(time.Microsecond))
				if code != c.want {
					t.Errorf("Redis hung: %d, want %d", code, c.want)
				}
				if slowest > timeout+25*time.Millisecond {
					t.Errorf("a store call took %s, past Fleet.Timeout %s", slowest, timeout)
				}
				if spent > time.Duration(n)*(timeout+25*time.Millisecond) {
					t.Errorf("%d store calls took %s", n, spent)
				}
				worst = max(worst, spent)
			}
		}
		if err := srv.signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
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
					t.Fatalf("replica %d: the store still fails 5s after SIGCONT: %v", i, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		calls := introspections(as)
		tok := as.MintOpaque(nil)
		for i, r := range rs {
			if w := serve(r.g.Handler(okHandler), tok); w.Code != 200 {
				t.Errorf("replica %d after SIGCONT: %d", i, w.Code)
			}
		}
		if n := introspections(as) - calls; n != 1 {
			t.Errorf("after SIGCONT, one new token on two replicas: %d calls, want 1", n)
		}
	}
	if worst > timeout+25*time.Millisecond {
		finding(t, "with Redis hung, one request spent %s in store calls (Fleet.Timeout %s): each call waits out the Timeout, and a new token makes 4 (5 with a Budget)", worst.Round(time.Millisecond), timeout)
	}
}
