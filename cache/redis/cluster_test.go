package tgredis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	tgredis "github.com/tokenguard/tokenguard/cache/redis"
)

// startCluster starts a Redis Cluster of three masters on loopback (slots
// split in three, no replicas) and returns a client of it with the
// recommended options.
func startCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	needServer(t)
	raw := client(t, shared)
	info := raw.Info(context.Background(), "server").Val()
	if i := strings.Index(info, "redis_version:"); i >= 0 {
		v := info[i+len("redis_version:"):]
		if major, _ := strconv.Atoi(v[:strings.IndexByte(v, '.')]); major < 7 {
			t.Skipf("redis-server %s: the cluster test needs 7.0 (--cluster-port, sharded pub/sub)", strings.TrimSpace(v[:strings.IndexByte(v, '\n')]))
		}
	}

	const nodes = 3
	var addrs []string
	var nodeClients []*redis.Client
	ctx := ctxFor(t, 30*time.Second)
	for i := 0; i < nodes; i++ {
		bus, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		srv, err := startServer(0, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", "5000")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.stop)
		addrs = append(addrs, srv.addr())
		c := client(t, srv)
		nodeClients = append(nodeClients, c)
		lo, hi := i*16384/nodes, (i+1)*16384/nodes-1
		if err := c.Do(ctx, "cluster", "addslotsrange", lo, hi).Err(); err != nil {
			t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
		}
		if i > 0 {
			if err := nodeClients[0].Do(ctx, "cluster", "meet", "127.0.0.1", srv.port, bus).Err(); err != nil {
				t.Fatalf("CLUSTER MEET: %v", err)
			}
		}
	}
	for _, c := range nodeClients {
		for {
			info := c.ClusterInfo(ctx).Val()
			if strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") &&
				strings.Contains(info, "cluster_slots_ok:16384") {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("the cluster did not form: %s", info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	o := recommended("")
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: addrs, ContextTimeoutEnabled: true,
		ReadTimeout: o.ReadTimeout, WriteTimeout: o.WriteTimeout, DialTimeout: o.DialTimeout,
		PoolTimeout: o.PoolTimeout, MaxRetries: -1, DialerRetries: 1,
	})
	t.Cleanup(func() { _ = cc.Close() })
	// Every node must agree that the others have their slots.
	for {
		cc.ReloadState(ctx)
		if _, err := cc.Get(ctx, "probe").Result(); err == redis.Nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the cluster client found no working cluster")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cc
}

func masterOf(t *testing.T, cc *redis.ClusterClient, key string) string {
	t.Helper()
	c, err := cc.MasterForKey(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return c.Options().Addr
}

// On a real three-node Redis Cluster every method works on keys of every
// node with no hash tag (each script has one key), and Wait is woken
// across nodes: PUBLISH from the key's node reaches a subscriber on
// another node, and sharded pub/sub stays on the key's node.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no cluster")
	}
	cc := startCluster(t)
	prefix := testPrefix(t)
	ctx := ctxFor(t, 30*time.Second)

	s := tgredis.New(cc, tgredis.Options{Prefix: prefix})
	seen := map[string]bool{}
	for i := 0; i < 30; i++ {
		key := fmt.Sprintf("token-%d", i)
		seen[masterOf(t, cc, s.Key(key))] = true
		if err := s.Set(ctx, key, []byte(key), time.Minute); err != nil {
			t.Fatalf("Set %s: %v", key, err)
		}
		if v, err := s.Get(ctx, key); err != nil || string(v) != key {
			t.Fatalf("Get %s = %q, %v", key, v, err)
		}
		if v, err := s.Wait(ctx, key); err != nil || string(v) != key {
			t.Fatalf("Wait %s = %q, %v", key, v, err)
		}
		if err := s.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Lease(ctx, "lease:"+key, "a", time.Minute); !ok || err != nil {
			t.Fatalf("Lease = %v, %v", ok, err)
		}
		if ok, _ := s.Lease(ctx, "lease:"+key, "b", time.Minute); ok {
			t.Fatal("second Lease granted")
		}
		if err := s.Release(ctx, "lease:"+key, "a"); err != nil {
			t.Fatalf("Release: %v", err)
		}
		for j := 0; j < 3; j++ {
			if ok, _, err := s.Take(ctx, "rate:"+key, 3, time.Minute); !ok || err != nil {
				t.Fatalf("Take = %v, %v", ok, err)
			}
		}
		if ok, retry, err := s.Take(ctx, "rate:"+key, 3, time.Minute); ok || err != nil || retry <= 0 {
			t.Fatalf("4th Take = %v, %s, %v", ok, retry, err)
		}
		if first, err := s.SeenOnce(ctx, "jti:"+key, time.Minute); !first || err != nil {
			t.Fatalf("SeenOnce = %v, %v", first, err)
		}
		if first, _ := s.SeenOnce(ctx, "jti:"+key, time.Minute); first {
			t.Fatal("second SeenOnce first")
		}
	}
	if len(seen) < 2 {
		t.Fatalf("the keys went to %d node(s); the test needs several", len(seen))
	}

	defer tgredis.SetRecheck(time.Hour)() // only a notification can wake a Wait
	for _, m := range notifyModes[:2] {
		t.Run("Wait "+m.name, func(t *testing.T) {
			waiter := tgredis.New(cc, tgredis.Options{Prefix: prefix, Notify: m.notify})
			other := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cc.Options().Addrs, ContextTimeoutEnabled: true})
			defer other.Close()
			setter := tgredis.New(other, tgredis.Options{Prefix: prefix, Notify: m.notify})
			// A key whose notification channel is on another node than
			// the key (for plain PUBLISH; a shard channel is on the key's
			// node by construction).
			key := ""
			for i := 0; i < 100 && key == ""; i++ {
				k := fmt.Sprintf("wait-%s-%d", m.name, i)
				if m.notify == tgredis.NotifySharded || masterOf(t, cc, prefix+"done:"+k) != masterOf(t, cc, s.Key(k)) {
					key = k
				}
			}
			done := make(chan []byte, 1)
			go func() {
				v, err := waiter.Wait(ctx, key)
				if err != nil {
					t.Error(err)
				}
				done <- v
			}()
			// Wait until the waiter is subscribed, on the node that holds
			// the channel's slot (where go-redis subscribes), so the value
			// can reach it only as a message.
			channel := prefix + "done:" + key
			if m.notify == tgredis.NotifySharded {
				channel = s.Key(key)
			}
			node, err := cc.MasterForKey(ctx, channel)
			if err != nil {
				t.Fatal(err)
			}
			subscribed(t, node, prefix, key, m.notify, 1)
			if err := setter.Set(ctx, key, []byte("across"), time.Minute); err != nil {
				t.Fatal(err)
			}
			select {
			case v := <-done:
				if string(v) != "across" {
					t.Fatalf("Wait = %q", v)
				}
			case <-time.After(generous):
				t.Fatal("Wait not woken on the cluster")
			}
		})
	}
}
