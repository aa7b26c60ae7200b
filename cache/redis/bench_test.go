package tgredis_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	tgredis "github.com/tokenguard/tokenguard/cache/redis"
)

// go test -run '^$' -bench . -benchmem: each call against the redis-server
// TestMain started on loopback, one caller at a time (the latency of one
// call, not the server's throughput).

func benchStore(b *testing.B, notify tgredis.Notify) (*tgredis.Store, context.Context) {
	srv := needServer(b)
	return tgredis.New(client(b, srv), tgredis.Options{Prefix: testPrefix(b), Notify: notify}), context.Background()
}

var value = make([]byte, 512) // about a sealed introspection answer

func BenchmarkGet(b *testing.B) {
	s, ctx := benchStore(b, tgredis.NotifyPublish)
	if err := s.Set(ctx, "k", value, time.Minute); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if v, err := s.Get(ctx, "k"); err != nil || len(v) != len(value) {
			b.Fatal(v, err)
		}
	}
}

func BenchmarkGetMissing(b *testing.B) {
	s, ctx := benchStore(b, tgredis.NotifyPublish)
	for i := 0; i < b.N; i++ {
		if _, err := s.Get(ctx, "none"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSet(b *testing.B) {
	for _, m := range notifyModes {
		b.Run(m.name, func(b *testing.B) {
			s, ctx := benchStore(b, m.notify)
			for i := 0; i < b.N; i++ {
				if err := s.Set(ctx, "k", value, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTake(b *testing.B) {
	s, ctx := benchStore(b, tgredis.NotifyPublish)
	for i := 0; i < b.N; i++ {
		if _, _, err := s.Take(ctx, "bucket", 5, time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLeaseRelease(b *testing.B) {
	s, ctx := benchStore(b, tgredis.NotifyPublish)
	for i := 0; i < b.N; i++ {
		if ok, err := s.Lease(ctx, "lease", "holder", time.Minute); !ok || err != nil {
			b.Fatal(ok, err)
		}
		if err := s.Release(ctx, "lease", "holder"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSeenOnce(b *testing.B) {
	s, ctx := benchStore(b, tgredis.NotifyPublish)
	for i := 0; i < b.N; i++ {
		if _, err := s.SeenOnce(ctx, "jti-"+strconv.Itoa(i), time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWaitWake: a Wait subscribed and past its first read, then a Set
// on another client; wake-µs is from the start of the Set to the return of
// the Wait. ns/op includes setting up the Wait (subscribing on a new
// connection), which wake-µs does not.
func BenchmarkWaitWake(b *testing.B) {
	for _, m := range notifyModes {
		b.Run(m.name, func(b *testing.B) {
			srv := needServer(b)
			raw := client(b, srv)
			prefix := testPrefix(b)
			waiter := tgredis.New(client(b, srv), tgredis.Options{Prefix: prefix, Notify: m.notify})
			setter := tgredis.New(client(b, srv), tgredis.Options{Prefix: prefix, Notify: m.notify})
			ctx := context.Background()
			var wake time.Duration
			for i := 0; i < b.N; i++ {
				key := "w" + strconv.Itoa(i)
				done := make(chan time.Time, 1)
				go func() {
					c, cancel := context.WithTimeout(ctx, generous)
					defer cancel()
					if v, err := waiter.Wait(c, key); v == nil || err != nil {
						b.Error("Wait:", v, err)
					}
					done <- time.Now()
				}()
				if m.notify == tgredis.NotifyPoll {
					time.Sleep(time.Duration(i%20) * time.Millisecond) // land anywhere in the poll period
				} else {
					subscribed(b, raw, prefix, key, m.notify, 1)
				}
				start := time.Now()
				if err := setter.Set(ctx, key, value, time.Minute); err != nil {
					b.Fatal(err)
				}
				wake += (<-done).Sub(start)
			}
			b.ReportMetric(float64(wake.Microseconds())/float64(b.N), "wake-µs")
		})
	}
}

// BenchmarkWaitValueThere: a Wait whose value is already stored, which
// costs its set-up (with pub/sub: a new connection, SUBSCRIBE and its
// confirmation) and one GET.
func BenchmarkWaitValueThere(b *testing.B) {
	for _, m := range notifyModes {
		b.Run(m.name, func(b *testing.B) {
			s, ctx := benchStore(b, m.notify)
			if err := s.Set(ctx, "k", value, time.Minute); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if v, err := s.Wait(ctx, "k"); v == nil || err != nil {
					b.Fatal(v, err)
				}
			}
		})
	}
}
