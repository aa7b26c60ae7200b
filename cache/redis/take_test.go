package tgredis_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tgredis "github.com/tokenguard/tokenguard/cache/redis"
)

// 5 a minute: exactly 5 units, then a refusal that says when the next one
// comes (one fifth of a minute, less the little refilled meanwhile).
func TestTakeLimit(t *testing.T) {
	srv := needServer(t)
	s := tgredis.New(client(t, srv), tgredis.Options{Prefix: testPrefix(t)})
	ctx := ctxFor(t, 5*time.Second)
	for i := 0; i < 5; i++ {
		ok, retry, err := s.Take(ctx, "client-1", 5, time.Minute)
		if !ok || retry != 0 || err != nil {
			t.Fatalf("Take %d = %v, %s, %v; want true", i+1, ok, retry, err)
		}
	}
	for i := 0; i < 3; i++ {
		ok, retry, err := s.Take(ctx, "client-1", 5, time.Minute)
		if ok || err != nil {
			t.Fatalf("Take %d = %v, %v; want false", 6+i, ok, err)
		}
		if retry <= 0 || retry > time.Minute {
			t.Fatalf("retryIn = %s, want (0, 1m]", retry)
		}
		if retry < 11*time.Second || retry > 12*time.Second {
			t.Fatalf("retryIn = %s, want about 12s (a minute / 5)", retry)
		}
		if i == 0 {
			t.Logf("6th Take refused, retry in %s", retry)
		}
	}
	// Another bucket is another budget.
	if ok, _, _ := s.Take(ctx, "client-2", 5, time.Minute); !ok {
		t.Fatal("another key shares the bucket")
	}
}

// Two Stores on two clients share one bucket, also taking concurrently.
func TestTakeShared(t *testing.T) {
	srv := needServer(t)
	prefix := testPrefix(t)
	a := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix})
	b := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix})
	ctx := ctxFor(t, 10*time.Second)

	for i, s := range []*tgredis.Store{a, b, a, b, a} {
		if ok, _, err := s.Take(ctx, "as", 5, time.Minute); !ok || err != nil {
			t.Fatalf("Take %d = %v, %v", i+1, ok, err)
		}
	}
	for _, s := range []*tgredis.Store{a, b} {
		if ok, retry, _ := s.Take(ctx, "as", 5, time.Minute); ok || retry <= 0 {
			t.Fatalf("Take beyond the shared limit = %v, %s", ok, retry)
		}
	}

	var taken atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 60; i++ {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := s.Take(ctx, "burst", 20, time.Hour)
			if err != nil {
				t.Error(err)
			}
			if ok {
				taken.Add(1)
			}
		}()
	}
	wg.Wait()
	if taken.Load() != 20 {
		t.Fatalf("%d of 60 concurrent Takes succeeded on a bucket of 20, want 20", taken.Load())
	}
}

// Units come back evenly: after the retryIn a refusal gives, one is there.
func TestTakeRefills(t *testing.T) {
	srv := needServer(t)
	s := tgredis.New(client(t, srv), tgredis.Options{Prefix: testPrefix(t)})
	ctx := ctxFor(t, 10*time.Second)
	const limit, interval = 10, 500 * time.Millisecond
	for i := 0; i < limit; i++ {
		if ok, _, _ := s.Take(ctx, "b", limit, interval); !ok {
			t.Fatalf("Take %d refused", i+1)
		}
	}
	ok, retry, err := s.Take(ctx, "b", limit, interval)
	if ok || err != nil || retry <= 0 || retry > interval/limit {
		t.Fatalf("Take = %v, %s, %v; want a refusal with retryIn in (0, %s]", ok, retry, err, interval/limit)
	}
	time.Sleep(retry + 5*time.Millisecond)
	if ok, _, _ := s.Take(ctx, "b", limit, interval); !ok {
		t.Fatalf("no unit %s after a refusal said %s", retry+5*time.Millisecond, retry)
	}
	// A full interval refills the bucket, never beyond limit.
	time.Sleep(2 * interval)
	n := 0
	for {
		ok, _, _ := s.Take(ctx, "b", limit, interval)
		if !ok {
			break
		}
		n++
	}
	if n != limit {
		t.Fatalf("%d units after a long pause, want %d", n, limit)
	}
}

// The bucket is a hash with a TTL of twice the interval, stamped with the
// server's clock (TIME), not the caller's.
func TestTakeState(t *testing.T) {
	srv := needServer(t)
	raw := client(t, srv)
	prefix := testPrefix(t)
	s := tgredis.New(raw, tgredis.Options{Prefix: prefix})
	ctx := ctxFor(t, 5*time.Second)
	if ok, _, err := s.Take(ctx, "b", 5, time.Minute); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if typ := raw.Type(ctx, prefix+"b").Val(); typ != "hash" {
		t.Fatalf("bucket is a %s", typ)
	}
	if pttl := raw.PTTL(ctx, prefix+"b").Val(); pttl <= 119*time.Second || pttl > 2*time.Minute {
		t.Fatalf("bucket PTTL = %s, want 2m", pttl)
	}
	h := raw.HGetAll(ctx, prefix+"b").Val()
	if tokens, err := strconv.ParseFloat(h["t"], 64); err != nil || tokens < 3.99 || tokens > 4.01 {
		t.Fatalf("t = %q, want 4", h["t"])
	}
	ts, err := strconv.ParseFloat(h["ts"], 64)
	if err != nil {
		t.Fatalf("ts = %q", h["ts"])
	}
	now, err := raw.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(float64(now.UnixMicro())-ts) * time.Microsecond; d < 0 || d > time.Second {
		t.Fatalf("ts is %s from the server's TIME", d)
	}
	// The script gets no time from the caller: a stamp in the future (a
	// clock that went back) refills nothing until the server's clock
	// passes it.
	future := float64(now.UnixMicro()) + float64(time.Hour/time.Microsecond)
	raw.HSet(ctx, prefix+"b", "t", "0.5", "ts", strconv.FormatFloat(future, 'f', 0, 64))
	ok, retry, err := s.Take(ctx, "b", 5, time.Minute)
	if ok || err != nil || retry < time.Hour || retry > time.Hour+7*time.Second {
		t.Fatalf("Take with ts an hour ahead = %v, %s, %v; want a refusal of about 1h6s", ok, retry, err)
	}
}

func TestTakeInvalid(t *testing.T) {
	srv := needServer(t)
	s := tgredis.New(client(t, srv), tgredis.Options{Prefix: testPrefix(t)})
	ctx := ctxFor(t, 5*time.Second)
	for _, c := range []struct {
		limit    int
		interval time.Duration
	}{{0, time.Minute}, {-1, time.Minute}, {5, 0}, {5, -time.Second}} {
		if _, _, err := s.Take(ctx, "b", c.limit, c.interval); err == nil {
			t.Errorf("Take(%d, %s): no error", c.limit, c.interval)
		}
	}
}
