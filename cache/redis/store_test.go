package tgredis_test

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tgredis "github.com/tokenguard/tokenguard/cache/redis"
)

// Get, Set and Delete under the prefix, with the TTL Set gives.
func TestGetSetDelete(t *testing.T) {
	srv := needServer(t)
	raw := client(t, srv)
	prefix := testPrefix(t)
	s := tgredis.New(raw, tgredis.Options{Prefix: prefix})
	ctx := ctxFor(t, 5*time.Second)

	if v, err := s.Get(ctx, "k"); v != nil || err != nil {
		t.Fatalf("Get of a missing key = %q, %v; want nil, nil", v, err)
	}
	value := []byte("sealed\x00answer\xff")
	if err := s.Set(ctx, "k", value, time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "k"); err != nil || !bytes.Equal(v, value) {
		t.Fatalf("Get = %q, %v; want %q", v, err, value)
	}
	// Under Prefix+key, with SET PX.
	if v, err := raw.Get(ctx, prefix+"k").Bytes(); err != nil || !bytes.Equal(v, value) {
		t.Fatalf("raw GET %sk = %q, %v", prefix, v, err)
	}
	if pttl := raw.PTTL(ctx, prefix+"k").Val(); pttl <= 59*time.Second || pttl > time.Minute {
		t.Fatalf("PTTL = %s, want about 1m", pttl)
	}
	// Set replaces, with the new TTL.
	if err := s.Set(ctx, "k", []byte("v2"), 150*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get(ctx, "k"); string(v) != "v2" {
		t.Fatalf("Get after replace = %q", v)
	}
	if pttl := raw.PTTL(ctx, prefix+"k").Val(); pttl <= 0 || pttl > 150*time.Millisecond {
		t.Fatalf("PTTL = %s, want (0, 150ms]", pttl)
	}
	time.Sleep(250 * time.Millisecond)
	if v, err := s.Get(ctx, "k"); v != nil || err != nil {
		t.Fatalf("Get after the TTL = %q, %v; want nil, nil", v, err)
	}
	// A sub-millisecond TTL is rounded up, not turned into "no expiry".
	if err := s.Set(ctx, "short", []byte("x"), time.Microsecond); err != nil {
		t.Fatal(err)
	}
	if pttl := raw.PTTL(ctx, prefix+"short").Val(); pttl > time.Millisecond {
		t.Fatalf("PTTL of a 1µs Set = %s", pttl)
	}

	// An empty value is a value.
	if err := s.Set(ctx, "empty", nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "empty"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get of an empty value = %#v, %v; want []byte{}, nil", v, err)
	}

	if err := s.Delete(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, "empty"); v != nil || err != nil {
		t.Fatalf("Get after Delete = %q, %v", v, err)
	}
	if err := s.Delete(ctx, "never-set"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}

	// A TTL that is not positive is refused: a value must not stay forever.
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := s.Set(ctx, "k", value, ttl); err == nil {
			t.Errorf("Set with ttl %s: no error", ttl)
		}
		if _, err := s.Lease(ctx, "l", "h", ttl); err == nil {
			t.Errorf("Lease with ttl %s: no error", ttl)
		}
		if _, err := s.SeenOnce(ctx, "j", ttl); err == nil {
			t.Errorf("SeenOnce with ttl %s: no error", ttl)
		}
	}
	if n := raw.Exists(ctx, prefix+"k", prefix+"l", prefix+"j").Val(); n != 0 {
		t.Fatalf("%d keys written by refused calls", n)
	}
}

// The default prefix is "tokenguard:".
func TestDefaultPrefix(t *testing.T) {
	srv := needServer(t)
	raw := client(t, srv)
	s := tgredis.New(raw, tgredis.Options{})
	ctx := ctxFor(t, 5*time.Second)
	key := strings.TrimPrefix(testPrefix(t), "tgtest:")
	if got := s.Key(key); got != "tokenguard:"+key {
		t.Fatalf("Key = %q", got)
	}
	if err := s.Set(ctx, key, []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	defer raw.Del(ctx, "tokenguard:"+key)
	if v := raw.Get(ctx, "tokenguard:"+key).Val(); v != "v" {
		t.Fatalf("raw GET tokenguard:%s = %q", key, v)
	}
}

// A context that has ended makes every call fail (or Wait return nil)
// without going to the server.
func TestEndedContext(t *testing.T) {
	srv := needServer(t)
	s := tgredis.New(client(t, srv), tgredis.Options{Prefix: testPrefix(t)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Get(ctx, "k"); err == nil {
		t.Error("Get: no error")
	}
	if err := s.Set(ctx, "k", []byte("v"), time.Minute); err == nil {
		t.Error("Set: no error")
	}
	if err := s.Delete(ctx, "k"); err == nil {
		t.Error("Delete: no error")
	}
	if _, err := s.Lease(ctx, "k", "h", time.Minute); err == nil {
		t.Error("Lease: no error")
	}
	if err := s.Release(ctx, "k", "h"); err == nil {
		t.Error("Release: no error")
	}
	if _, _, err := s.Take(ctx, "k", 1, time.Minute); err == nil {
		t.Error("Take: no error")
	}
	if _, err := s.SeenOnce(ctx, "k", time.Minute); err == nil {
		t.Error("SeenOnce: no error")
	}
	if v, err := s.Wait(ctx, "k"); v != nil || err != nil {
		t.Errorf("Wait = %q, %v; want nil, nil", v, err)
	}
}

// One lease among two Stores on separate clients, also when many ask at
// once; it expires after its TTL.
func TestLeaseExclusive(t *testing.T) {
	srv := needServer(t)
	prefix := testPrefix(t)
	a := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix})
	b := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix})
	ctx := ctxFor(t, 5*time.Second)

	if ok, err := a.Lease(ctx, "token1", "replica-a", time.Minute); !ok || err != nil {
		t.Fatalf("first Lease = %v, %v", ok, err)
	}
	if ok, err := b.Lease(ctx, "token1", "replica-b", time.Minute); ok || err != nil {
		t.Fatalf("second Lease = %v, %v; want false, nil", ok, err)
	}
	if ok, _ := a.Lease(ctx, "token1", "replica-a", time.Minute); ok {
		t.Fatal("Lease again by its holder = true; want false (NX)")
	}

	// 2 Stores × 20 goroutines race for one key: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.Lease(ctx, "token2", "h", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d leases granted, want 1", wins.Load())
	}

	// A lease ends with its TTL.
	if ok, _ := a.Lease(ctx, "token3", "replica-a", 100*time.Millisecond); !ok {
		t.Fatal("Lease token3 failed")
	}
	time.Sleep(200 * time.Millisecond)
	if ok, err := b.Lease(ctx, "token3", "replica-b", time.Minute); !ok || err != nil {
		t.Fatalf("Lease after the TTL = %v, %v; want true", ok, err)
	}
}

// Release removes a lease only for its holder; a missing key is no error;
// it works after the server's script cache is flushed (EVALSHA falls back
// to EVAL).
func TestReleaseOnlyByHolder(t *testing.T) {
	srv := needServer(t)
	raw := client(t, srv)
	prefix := testPrefix(t)
	a := tgredis.New(raw, tgredis.Options{Prefix: prefix})
	b := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix})
	ctx := ctxFor(t, 5*time.Second)

	if ok, _ := a.Lease(ctx, "t", "replica-a", time.Minute); !ok {
		t.Fatal("Lease failed")
	}
	if err := b.Release(ctx, "t", "replica-b"); err != nil {
		t.Fatal(err)
	}
	if v := raw.Get(ctx, prefix+"t").Val(); v != "replica-a" {
		t.Fatalf("after a release by another holder the lease holds %q", v)
	}
	if ok, _ := b.Lease(ctx, "t", "replica-b", time.Minute); ok {
		t.Fatal("lease taken while held")
	}

	if err := raw.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx, "t", "replica-a"); err != nil {
		t.Fatalf("Release after SCRIPT FLUSH: %v", err)
	}
	if n := raw.Exists(ctx, prefix+"t").Val(); n != 0 {
		t.Fatal("the holder's Release left the lease")
	}
	if ok, _ := b.Lease(ctx, "t", "replica-b", time.Minute); !ok {
		t.Fatal("no lease after Release")
	}
	if err := a.Release(ctx, "missing", "replica-a"); err != nil {
		t.Fatalf("Release of a missing key: %v", err)
	}
}

// SeenOnce: first true, then false on any Store until the TTL passes.
func TestSeenOnce(t *testing.T) {
	srv := needServer(t)
	prefix := testPrefix(t)
	raw := client(t, srv)
	a := tgredis.New(raw, tgredis.Options{Prefix: prefix})
	b := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix})
	ctx := ctxFor(t, 5*time.Second)

	if first, err := a.SeenOnce(ctx, "dpop:jti-1", 150*time.Millisecond); !first || err != nil {
		t.Fatalf("first SeenOnce = %v, %v", first, err)
	}
	if first, err := a.SeenOnce(ctx, "dpop:jti-1", 150*time.Millisecond); first || err != nil {
		t.Fatalf("second SeenOnce = %v, %v; want false", first, err)
	}
	if first, _ := b.SeenOnce(ctx, "dpop:jti-1", 150*time.Millisecond); first {
		t.Fatal("SeenOnce on another Store = true; want false")
	}
	if first, _ := b.SeenOnce(ctx, "dpop:jti-2", time.Minute); !first {
		t.Fatal("another jti is not new")
	}
	if pttl := raw.PTTL(ctx, prefix+"dpop:jti-2").Val(); pttl <= 59*time.Second {
		t.Fatalf("PTTL = %s", pttl)
	}
	time.Sleep(250 * time.Millisecond)
	if first, _ := a.SeenOnce(ctx, "dpop:jti-1", time.Minute); !first {
		t.Fatal("SeenOnce after the TTL = false")
	}

	// Concurrent replays of one jti: one first.
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if first, err := s.SeenOnce(ctx, "dpop:jti-3", time.Minute); err != nil {
				t.Error(err)
			} else if first {
				firsts.Add(1)
			}
		}()
	}
	wg.Wait()
	if firsts.Load() != 1 {
		t.Fatalf("%d firsts, want 1", firsts.Load())
	}
}

// Every script names exactly one key (KEYS[1]) and so is valid on Redis
// Cluster with no hash tag; TestCluster runs them on one.
func TestScriptsNameOneKey(t *testing.T) {
	src, err := os.ReadFile("scripts.go")
	if err != nil {
		t.Fatal(err)
	}
	scripts := regexp.MustCompile("(?s)redis\\.NewScript\\(`(.*?)`\\)").FindAllStringSubmatch(string(src), -1)
	if len(scripts) != 4 {
		t.Fatalf("found %d scripts, want 4", len(scripts))
	}
	for _, s := range scripts {
		keys := regexp.MustCompile(`KEYS\[[^\]]*\]`).FindAllString(s[1], -1)
		if len(keys) == 0 {
			t.Errorf("script names no key:\n%s", s[1])
		}
		for _, k := range keys {
			if k != "KEYS[1]" {
				t.Errorf("script uses %s:\n%s", k, s[1])
			}
		}
		for _, bad := range []string{"#KEYS", "ipairs(KEYS", "unpack(KEYS"} {
			if strings.Contains(s[1], bad) {
				t.Errorf("script iterates over KEYS:\n%s", s[1])
			}
		}
	}
}
