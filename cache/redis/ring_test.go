package tgredis_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	tgredis "github.com/tokenguard/tokenguard/cache/redis"
)

// A redis.Ring (sharding by the client) over two servers: every method
// works; NotifySharded wakes a Wait by its message (the shard channel is on
// the key's shard), NotifyPublish by its re-read; and when every shard is
// down, Wait returns an error (its first GET fails; see
// TestWaitSurvivesSubscribePanic for the Subscribe after it).
func TestRing(t *testing.T) {
	needServer(t)
	addrs := map[string]string{}
	var servers []*server
	for _, name := range []string{"a", "b"} {
		srv, err := startServer(0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.stop)
		servers = append(servers, srv)
		addrs[name] = srv.addr()
	}
	o := recommended("")
	ring := redis.NewRing(&redis.RingOptions{
		Addrs: addrs, HeartbeatFrequency: 50 * time.Millisecond, ContextTimeoutEnabled: true,
		DialTimeout: o.DialTimeout, ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout,
		PoolTimeout: o.PoolTimeout, MaxRetries: -1, DialerRetries: 1,
	})
	defer ring.Close()
	prefix := testPrefix(t)
	ctx := ctxFor(t, 30*time.Second)

	s := tgredis.New(ring, tgredis.Options{Prefix: prefix, Notify: tgredis.NotifySharded})
	for i := 0; i < 10; i++ {
		key := fmt.Sprintf("token-%d", i)
		if err := s.Set(ctx, key, []byte(key), time.Minute); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Get(ctx, key); err != nil || string(v) != key {
			t.Fatalf("Get = %q, %v", v, err)
		}
		if ok, err := s.Lease(ctx, "lease:"+key, "a", time.Minute); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if err := s.Release(ctx, "lease:"+key, "a"); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := s.Take(ctx, "rate:"+key, 1, time.Minute); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if ok, _, _ := s.Take(ctx, "rate:"+key, 1, time.Minute); ok {
			t.Fatal("second Take of 1 granted")
		}
	}
	for _, srv := range servers {
		if n := client(t, srv).DBSize(ctx).Val(); n == 0 {
			t.Fatalf("no key on the shard %s", srv.addr())
		}
	}

	wake := func(notify tgredis.Notify, key string) time.Duration {
		waiter := tgredis.New(ring, tgredis.Options{Prefix: prefix, Notify: notify})
		done := make(chan time.Time, 1)
		go func() {
			if v, err := waiter.Wait(ctx, key); string(v) != "v" || err != nil {
				t.Errorf("Wait = %q, %v", v, err)
			}
			done <- time.Now()
		}()
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		if err := tgredis.New(ring, tgredis.Options{Prefix: prefix, Notify: notify}).Set(ctx, key, []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-done:
			return at.Sub(start)
		case <-time.After(generous):
			t.Fatal("Wait not woken")
			return 0
		}
	}
	// A key whose notification channel the Ring puts on the other shard.
	shardOf := func(name string) string {
		ring.Set(ctx, name, "probe", time.Minute)
		defer ring.Del(ctx, name)
		for _, srv := range servers {
			if client(t, srv).Exists(ctx, name).Val() == 1 {
				return srv.addr()
			}
		}
		t.Fatalf("%s is on no shard", name)
		return ""
	}
	var keys []string
	for i := 0; len(keys) < 2 && i < 200; i++ {
		k := fmt.Sprintf("w-publish-%d", i)
		if shardOf(prefix+k) != shardOf(prefix+"done:"+k) {
			keys = append(keys, k)
		}
	}
	if len(keys) < 2 {
		t.Fatal("no keys whose channel is on another shard")
	}
	t.Logf("NotifyPublish on a Ring, channel on another shard: woken after %s (by the re-read)", wake(tgredis.NotifyPublish, keys[0]))
	// Without the re-read, that Wait hears nothing.
	func() {
		defer tgredis.SetRecheck(time.Hour)()
		store := tgredis.New(ring, tgredis.Options{Prefix: prefix})
		c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		timer := time.AfterFunc(50*time.Millisecond, func() { _ = store.Set(ctx, keys[1], []byte("v"), time.Minute) })
		defer timer.Stop()
		if v, _ := store.Wait(c, keys[1]); v != nil {
			t.Fatal("a PUBLISH on the key's shard reached a subscriber on the other shard")
		}
	}()
	func() {
		defer tgredis.SetRecheck(time.Hour)()
		t.Logf("NotifySharded on a Ring: woken after %s", wake(tgredis.NotifySharded, "w-sharded"))
	}()

	for _, srv := range servers {
		srv.kill()
	}
	for {
		_, err := s.Get(ctx, "k")
		if err != nil && strings.Contains(err.Error(), "all ring shards are down") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the Ring did not find its shards down: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, notify := range []tgredis.Notify{tgredis.NotifyPublish, tgredis.NotifySharded} {
		c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		v, err := tgredis.New(ring, tgredis.Options{Prefix: prefix, Notify: notify}).Wait(c, "k")
		cancel()
		if v != nil || err == nil {
			t.Fatalf("Wait with every shard down = %q, %v; want an error", v, err)
		}
	}
}

// panicky is a client whose Subscribe panics, as redis.Ring's does when
// it finds every shard down, and whose GET finds nothing.
type panicky struct{ redis.UniversalClient }

func (panicky) Get(ctx context.Context, key string) *redis.StringCmd {
	return redis.NewStringResult("", redis.Nil)
}
func (panicky) Subscribe(context.Context, ...string) *redis.PubSub { panic("all ring shards are down") }
func (panicky) SSubscribe(context.Context, ...string) *redis.PubSub {
	panic("all ring shards are down")
}

// Should the shards go down between Wait's first GET and its Subscribe,
// the panic is not Wait's caller's: Wait polls instead, and returns nil at
// the end of its context. (A fake: no server can make that moment come.)
func TestWaitSurvivesSubscribePanic(t *testing.T) {
	for _, notify := range []tgredis.Notify{tgredis.NotifyPublish, tgredis.NotifySharded} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		v, err := tgredis.New(panicky{}, tgredis.Options{Notify: notify}).Wait(ctx, "k")
		cancel()
		if v != nil || err != nil {
			t.Fatalf("Wait = %q, %v; want nil, nil", v, err)
		}
	}
}
