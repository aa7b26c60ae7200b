// Package cache is a bounded, TTL-aware in-memory cache: a fixed number of
// LRU shards (hashicorp/golang-lru/v2) whose entries each carry their own
// expiry. It knows nothing about tokens; keys are opaque strings, which the
// caller makes from hashes so that no secret is ever a key.
package cache

import (
	"context"
	"hash/maphash"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Cache is what tokenguard needs from a cache. LRU implements it in
// memory; a shared store (Redis, memcached) can implement it for a fleet
// of replicas. Implementations must be safe for concurrent use.
type Cache[V any] interface {
	// Get returns the live value for key. An expired entry is a miss.
	Get(ctx context.Context, key string) (V, bool)
	// Set stores v under key for ttl; a ttl <= 0 stores nothing.
	Set(ctx context.Context, key string, v V, ttl time.Duration)
	// Delete removes key.
	Delete(ctx context.Context, key string)
}

// Stats are cumulative counters.
type Stats struct {
	Hits, Misses, Evictions, Expired uint64
}

// Options configures an LRU.
type Options struct {
	// Capacity is the most entries held at once, over all shards. Zero
	// means 10,000.
	Capacity int
	// Shards splits the cache so concurrent requests rarely share a lock.
	// Zero means 16; it is lowered so every shard holds at least one entry.
	Shards int
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// LRU is an in-memory Cache with a hard capacity bound: when full, adding
// evicts the least recently used entry of the shard.
type LRU[V any] struct {
	shards []*lru.Cache[string, entry[V]]
	seed   maphash.Seed
	now    func() time.Time

	hits, misses, evictions, expired atomic.Uint64
}

// New returns an empty LRU.
func New[V any](o Options) *LRU[V] {
	if o.Capacity <= 0 {
		o.Capacity = 10_000
	}
	if o.Shards <= 0 {
		o.Shards = 16
	}
	o.Shards = min(o.Shards, o.Capacity)
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &LRU[V]{shards: make([]*lru.Cache[string, entry[V]], o.Shards), seed: maphash.MakeSeed(), now: o.Now}
	// Shard sizes add up to Capacity exactly, so the bound is the sum.
	for i := range c.shards {
		size := o.Capacity / o.Shards
		if i < o.Capacity%o.Shards {
			size++
		}
		s, err := lru.New[string, entry[V]](size)
		if err != nil {
			panic(err) // only for size <= 0, excluded above
		}
		c.shards[i] = s
	}
	return c
}

func (c *LRU[V]) shard(key string) *lru.Cache[string, entry[V]] {
	if len(c.shards) == 1 {
		return c.shards[0]
	}
	return c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
}

// Get implements Cache.
func (c *LRU[V]) Get(_ context.Context, key string) (V, bool) {
	s := c.shard(key)
	e, ok := s.Get(key)
	if !ok {
		c.misses.Add(1)
		var zero V
		return zero, false
	}
	if !c.now().Before(e.expires) {
		s.Remove(key)
		c.expired.Add(1)
		c.misses.Add(1)
		var zero V
		return zero, false
	}
	c.hits.Add(1)
	return e.v, true
}

// Set implements Cache.
func (c *LRU[V]) Set(_ context.Context, key string, v V, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	if c.shard(key).Add(key, entry[V]{v: v, expires: c.now().Add(ttl)}) {
		c.evictions.Add(1)
	}
}

// Delete implements Cache.
func (c *LRU[V]) Delete(_ context.Context, key string) {
	c.shard(key).Remove(key)
}

// DeleteFunc removes every entry whose value satisfies drop, and returns
// how many it removed. It walks the whole cache; use it for rare events
// such as a signing key leaving a key set.
func (c *LRU[V]) DeleteFunc(drop func(V) bool) int {
	n := 0
	for _, s := range c.shards {
		for _, k := range s.Keys() {
			if e, ok := s.Peek(k); ok && drop(e.v) {
				if s.Remove(k) {
					n++
				}
			}
		}
	}
	return n
}

// Len returns the number of entries held, expired ones included until they
// are looked up or pushed out.
func (c *LRU[V]) Len() int {
	n := 0
	for _, s := range c.shards {
		n += s.Len()
	}
	return n
}

// Stats returns the counters so far.
func (c *LRU[V]) Stats() Stats {
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Evictions: c.evictions.Load(), Expired: c.expired.Load()}
}
