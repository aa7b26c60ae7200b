package tgredis_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	tgredis "github.com/tokenguard/tokenguard/cache/redis"
)

// generous is the only timing that decides a test: far beyond any wake-up
// on loopback, so a slow machine does not fail it.
const generous = 2 * time.Second

var notifyModes = []struct {
	name   string
	notify tgredis.Notify
}{
	{"publish", tgredis.NotifyPublish},
	{"sharded", tgredis.NotifySharded},
	{"poll", tgredis.NotifyPoll},
}

// subscribed waits until n clients are subscribed to the channel of key
// under prefix, so a test knows its Wait is past its first GET.
func subscribed(t testing.TB, raw *redis.Client, prefix, key string, notify tgredis.Notify, n int64) {
	t.Helper()
	ctx := ctxFor(t, generous)
	for {
		var got int64
		switch notify {
		case tgredis.NotifySharded:
			got = raw.PubSubShardNumSub(ctx, prefix+key).Val()[prefix+key]
		case tgredis.NotifyPublish:
			got = raw.PubSubNumSub(ctx, prefix+"done:"+key).Val()[prefix+"done:"+key]
		default:
			time.Sleep(3 * tgredis.DefaultPollInterval) // past the first GET
			return
		}
		if got >= n {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%d subscribers to the channel of %s, want %d", got, key, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A Wait on one Store returns the value a Set on another Store stores, soon
// after the Set, in each notification mode.
func TestWaitWokenBySet(t *testing.T) {
	srv := needServer(t)
	raw := client(t, srv)
	for _, m := range notifyModes {
		t.Run(m.name, func(t *testing.T) {
			prefix := testPrefix(t)
			waiter := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix, Notify: m.notify})
			setter := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix, Notify: m.notify})
			ctx := ctxFor(t, 10*time.Second)

			type result struct {
				v   []byte
				err error
				at  time.Time
			}
			done := make(chan result, 1)
			go func() {
				v, err := waiter.Wait(ctx, "answer")
				done <- result{v, err, time.Now()}
			}()
			subscribed(t, raw, prefix, "answer", m.notify, 1)
			if err := setter.Set(ctx, "answer", []byte("sealed"), time.Minute); err != nil {
				t.Fatal(err)
			}
			setAt := time.Now()
			select {
			case r := <-done:
				if r.err != nil || string(r.v) != "sealed" {
					t.Fatalf("Wait = %q, %v", r.v, r.err)
				}
				t.Logf("%s: Wait returned %s after Set returned", m.name, r.at.Sub(setAt))
			case <-time.After(generous):
				t.Fatalf("Wait not woken %s after Set", generous)
			}
		})
	}
}

// A subscribed Wait is woken by the notification itself: with the
// periodic re-read turned off, a message published with no value stored
// still wakes it with the message's value.
func TestWaitWokenByNotification(t *testing.T) {
	srv := needServer(t)
	raw := client(t, srv)
	defer tgredis.SetRecheck(time.Hour)()
	for _, m := range notifyModes[:2] {
		t.Run(m.name, func(t *testing.T) {
			prefix := testPrefix(t)
			s := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix, Notify: m.notify})
			ctx := ctxFor(t, generous)
			done := make(chan []byte, 1)
			go func() {
				v, err := s.Wait(ctx, "k")
				if err != nil {
					t.Error(err)
				}
				done <- v
			}()
			subscribed(t, raw, prefix, "k", m.notify, 1)
			if m.notify == tgredis.NotifySharded {
				raw.SPublish(ctx, prefix+"k", "from-the-message")
			} else {
				raw.Publish(ctx, prefix+"done:k", "from-the-message")
			}
			if v := <-done; string(v) != "from-the-message" {
				t.Fatalf("Wait = %q, want the published value", v)
			}
		})
	}
}

// No Set is missed, whenever it lands relative to the Wait's subscription
// and first read: with the re-read off, 200 rounds of a Wait and a Set
// racing each other all end with the value.
func TestWaitNeverMissesASet(t *testing.T) {
	srv := needServer(t)
	defer tgredis.SetRecheck(time.Hour)()
	for _, m := range notifyModes[:2] {
		t.Run(m.name, func(t *testing.T) {
			prefix := testPrefix(t)
			waiter := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix, Notify: m.notify})
			setter := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix, Notify: m.notify})
			for i := 0; i < 200; i++ {
				key := fmt.Sprintf("race-%d", i)
				ctx, cancel := context.WithTimeout(context.Background(), generous)
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
					if err := setter.Set(ctx, key, []byte(key), time.Minute); err != nil {
						t.Error(err)
					}
				}()
				v, err := waiter.Wait(ctx, key)
				wg.Wait()
				cancel()
				if err != nil || string(v) != key {
					t.Fatalf("round %d: Wait = %q, %v; want %q", i, v, err, key)
				}
			}
		})
	}
}

// A value already there is returned at once.
func TestWaitValueAlreadyThere(t *testing.T) {
	srv := needServer(t)
	for _, m := range notifyModes {
		s := tgredis.New(client(t, srv), tgredis.Options{Prefix: testPrefix(t), Notify: m.notify})
		ctx := ctxFor(t, generous)
		if err := s.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Wait(ctx, "k"); err != nil || string(v) != "v" {
			t.Fatalf("%s: Wait = %q, %v", m.name, v, err)
		}
	}
}

// Wait returns nil and no error when its context's deadline passes, and
// when it is cancelled (no deadline).
func TestWaitContextEnds(t *testing.T) {
	srv := needServer(t)
	for _, m := range notifyModes {
		t.Run(m.name, func(t *testing.T) {
			s := tgredis.New(client(t, srv), tgredis.Options{Prefix: testPrefix(t), Notify: m.notify})

			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			start := time.Now()
			v, err := s.Wait(ctx, "nothing")
			took := time.Since(start)
			if v != nil || err != nil {
				t.Fatalf("Wait = %q, %v; want nil, nil", v, err)
			}
			if took < 140*time.Millisecond || took > generous {
				t.Fatalf("Wait with a 150ms deadline took %s", took)
			}
			t.Logf("deadline 150ms: returned after %s", took)

			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			start = time.Now()
			v, err = s.Wait(ctx, "nothing")
			if v != nil || err != nil {
				t.Fatalf("cancelled Wait = %q, %v; want nil, nil", v, err)
			}
			if took := time.Since(start); took > generous {
				t.Fatalf("cancelled Wait took %s", took)
			}
			t.Logf("cancelled after 50ms: returned after %s", time.Since(start))
		})
	}
}

// A user with no pub/sub rights (ACL) still has Wait: it polls.
func TestWaitPollsWithoutPubSub(t *testing.T) {
	srv := needServer(t)
	raw := client(t, srv)
	ctx := ctxFor(t, 10*time.Second)
	user := "tgtest-nopubsub"
	if err := raw.Do(ctx, "acl", "setuser", user, "reset", "on", ">secret", "~*", "resetchannels", "+@all").Err(); err != nil {
		t.Skipf("ACL SETUSER: %v", err)
	}
	defer raw.Do(context.Background(), "acl", "deluser", user)
	opts := recommended(srv.addr())
	opts.Username, opts.Password = user, "secret"
	limited := redis.NewClient(opts)
	defer limited.Close()
	if err := limited.Subscribe(ctx, "x").Close(); err != nil {
		t.Fatal(err)
	}

	prefix := testPrefix(t)
	waiter := tgredis.New(limited, tgredis.Options{Prefix: prefix})
	setter := tgredis.New(raw, tgredis.Options{Prefix: prefix})
	done := make(chan []byte, 1)
	go func() {
		v, err := waiter.Wait(ctx, "k")
		if err != nil {
			t.Error(err)
		}
		done <- v
	}()
	time.Sleep(100 * time.Millisecond)
	if err := setter.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-done:
		if string(v) != "v" {
			t.Fatalf("Wait = %q", v)
		}
	case <-time.After(generous):
		t.Fatal("a polling Wait was not woken")
	}
}

// No goroutine outlives a Wait: after Waits that were woken, timed out,
// were cancelled, polled or could not subscribe, the process has the
// goroutines it had before.
func TestWaitLeavesNoGoroutine(t *testing.T) {
	srv := needServer(t)
	raw := client(t, srv)
	prefix := testPrefix(t)
	stores := map[tgredis.Notify]*tgredis.Store{}
	for _, m := range notifyModes {
		stores[m.notify] = tgredis.New(raw, tgredis.Options{Prefix: prefix, Notify: m.notify})
	}
	setter := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix})
	sharded := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix, Notify: tgredis.NotifySharded})
	// Warm up the clients' pools, then count.
	ctx := ctxFor(t, 30*time.Second)
	for _, s := range stores {
		_, _ = s.Get(ctx, "warm")
	}
	_, _ = setter.Get(ctx, "warm")
	_, _ = sharded.Get(ctx, "warm")
	runtime.GC()
	before := runtime.NumGoroutine()

	for i := 0; i < 5; i++ {
		for _, m := range notifyModes {
			s := stores[m.notify]
			// Timed out.
			c, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
			if v, err := s.Wait(c, "none"); v != nil || err != nil {
				t.Fatalf("Wait = %q, %v", v, err)
			}
			cancel()
			// Cancelled.
			c, cancel = context.WithCancel(ctx)
			timer := time.AfterFunc(20*time.Millisecond, cancel)
			_, _ = s.Wait(c, "none")
			timer.Stop()
			cancel()
			// Woken.
			key := fmt.Sprintf("woken-%s-%d", m.name, i)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(5 * time.Millisecond)
				set := setter
				if m.notify == tgredis.NotifySharded {
					set = sharded
				}
				_ = set.Set(ctx, key, []byte("v"), time.Minute)
			}()
			c, cancel = context.WithTimeout(ctx, generous)
			if v, err := s.Wait(c, key); string(v) != "v" || err != nil {
				t.Fatalf("%s: Wait = %q, %v", m.name, v, err)
			}
			cancel()
			wg.Wait()
		}
	}
	// The goroutines a test starts and ends are gone by now: time.AfterFunc
	// and the setters were waited for. Give the runtime a moment to reap
	// them, no more.
	var after int
	for i := 0; i < 100; i++ {
		if after = runtime.NumGoroutine(); after <= before {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
