package cache

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct{ t atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

var ctx = context.Background()

func TestGetSetExpiry(t *testing.T) {
	var clk clock
	c := New[string](Options{Capacity: 10, Now: clk.now})
	c.Set(ctx, "a", "A", time.Second)
	c.Set(ctx, "zero", "Z", 0)
	c.Set(ctx, "neg", "N", -time.Second)
	if v, ok := c.Get(ctx, "a"); !ok || v != "A" {
		t.Fatalf("Get(a) = %q, %v", v, ok)
	}
	if _, ok := c.Get(ctx, "zero"); ok {
		t.Error("ttl 0 stored")
	}
	if _, ok := c.Get(ctx, "neg"); ok {
		t.Error("negative ttl stored")
	}
	clk.advance(999 * time.Millisecond)
	if _, ok := c.Get(ctx, "a"); !ok {
		t.Error("expired early")
	}
	clk.advance(time.Millisecond)
	if _, ok := c.Get(ctx, "a"); ok {
		t.Error("served at its expiry instant")
	}
	if c.Len() != 0 {
		t.Errorf("expired entry still held: Len %d", c.Len())
	}
	c.Set(ctx, "b", "B", time.Minute)
	c.Delete(ctx, "b")
	if _, ok := c.Get(ctx, "b"); ok {
		t.Error("deleted entry served")
	}
	st := c.Stats()
	if st.Hits != 2 || st.Misses != 4 || st.Expired != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestCapacityIsAHardBound(t *testing.T) {
	for _, shards := range []int{1, 3, 16, 64} {
		t.Run(fmt.Sprint(shards), func(t *testing.T) {
			c := New[int](Options{Capacity: 50, Shards: shards})
			for i := range 100_000 {
				c.Set(ctx, fmt.Sprint(i), i, time.Hour)
				if i%997 == 0 && c.Len() > 50 {
					t.Fatalf("Len %d > capacity after %d adds", c.Len(), i+1)
				}
			}
			if c.Len() > 50 {
				t.Fatalf("Len %d > 50", c.Len())
			}
			if ev := c.Stats().Evictions; ev < 100_000-50 {
				t.Errorf("evictions %d", ev)
			}
		})
	}
}

func TestLeastRecentlyUsedGoesFirst(t *testing.T) {
	c := New[int](Options{Capacity: 2, Shards: 1})
	c.Set(ctx, "a", 1, time.Hour)
	c.Set(ctx, "b", 2, time.Hour)
	c.Get(ctx, "a")
	c.Set(ctx, "c", 3, time.Hour)
	if _, ok := c.Get(ctx, "b"); ok {
		t.Error("b survived; it was the least recently used")
	}
	if _, ok := c.Get(ctx, "a"); !ok {
		t.Error("a evicted though recently used")
	}
}

func TestDeleteFunc(t *testing.T) {
	c := New[string](Options{Capacity: 100})
	for i := range 20 {
		c.Set(ctx, fmt.Sprint(i), fmt.Sprint("kid-", i%2), time.Hour)
	}
	if n := c.DeleteFunc(func(v string) bool { return v == "kid-1" }); n != 10 {
		t.Errorf("removed %d, want 10", n)
	}
	if c.Len() != 10 {
		t.Errorf("Len %d", c.Len())
	}
}

func TestMemoryStaysFlat(t *testing.T) {
	c := New[[64]byte](Options{Capacity: 1000})
	fill := func(from int) {
		for i := range 50_000 {
			c.Set(ctx, fmt.Sprintf("%032d", from+i), [64]byte{}, time.Hour)
		}
	}
	fill(0)
	runtime.GC()
	var m1, m2 runtime.MemStats
	runtime.ReadMemStats(&m1)
	fill(1_000_000)
	runtime.GC()
	runtime.ReadMemStats(&m2)
	if grow := int64(m2.HeapAlloc) - int64(m1.HeapAlloc); grow > 1<<20 {
		t.Errorf("heap grew by %d bytes over 50,000 more adds at capacity", grow)
	}
	if c.Len() != 1000 {
		t.Errorf("Len %d", c.Len())
	}
}

func TestConcurrentUse(t *testing.T) {
	c := New[int](Options{Capacity: 100})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := fmt.Sprint((g*7 + i) % 300)
				c.Set(ctx, k, i, time.Minute)
				c.Get(ctx, k)
				if i%50 == 0 {
					c.Delete(ctx, k)
				}
			}
		}()
	}
	wg.Wait()
	if c.Len() > 100 {
		t.Errorf("Len %d > 100", c.Len())
	}
}

var _ Cache[int] = (*LRU[int])(nil)
