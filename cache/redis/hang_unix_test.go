//go:build unix

package tgredis_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	tgredis "github.com/tokenguard/tokenguard/cache/redis"
)

// A server that hangs (SIGSTOP: it accepts connections but answers
// nothing) is worse than a dead one. With ContextTimeoutEnabled, the
// context bounds every call even when go-redis's ReadTimeout is long; once
// the server goes on (SIGCONT), the Store works again.
func TestServerHangs(t *testing.T) {
	needServer(t)
	srv, err := startServer(0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	opts := recommended(srv.addr())
	opts.ReadTimeout, opts.WriteTimeout = 10*time.Second, 10*time.Second // only the context can bound a call
	c := redis.NewClient(opts)
	defer c.Close()
	s := tgredis.New(c, tgredis.Options{Prefix: testPrefix(t)})
	allWork(t, s)
	_ = s.Delete(context.Background(), "k")
	_ = s.Release(context.Background(), "lease", "h")

	if err := srv.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			_ = srv.signal(syscall.SIGCONT)
		}
	}()
	allFailInTime(t, s, 200*time.Millisecond)

	// Without ContextTimeoutEnabled, go-redis ignores the context's
	// deadline on the socket and waits for ReadTimeout: shown, not
	// asserted, with a ReadTimeout of 1s.
	loose := redis.NewClient(&redis.Options{Addr: srv.addr(), ReadTimeout: time.Second, MaxRetries: -1, DialTimeout: time.Second})
	defer loose.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	start := time.Now()
	_, err = tgredis.New(loose, tgredis.Options{}).Get(ctx, "k")
	cancel()
	t.Logf("without ContextTimeoutEnabled, a Get with a 200ms deadline on a hung server took %s: %v", time.Since(start), err)

	if err := srv.signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	stopped = false
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := s.Get(ctx, "k")
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 5s after SIGCONT: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	allWork(t, s)
}
