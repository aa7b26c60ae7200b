package tokenguard

import (
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
)

// tokenHash names a token in the in-memory caches without keeping it: h,
// a keyed hash of the whole token, finds the entry, and check, a keyed
// hash of its signature part (with its length), must match too. The
// seeds are random per process and never leave it, so no one can aim a
// token at another's entry; a random match of both is a 2^-128 event, and
// matching check alone needs the other token's signature, that is the
// token itself. Hashing costs about a tenth of SHA-256 (about 1.8 µs for a
// 16 KB token against 18 µs here), which a cache hit pays on every
// request. Shared stores and introspection keep SHA-256 (tokenKey).
type tokenHash struct{ h, check uint64 }

// tokenHasher holds the seeds of one Guard.
type tokenHasher struct{ whole, sig maphash.Seed }

func newTokenHasher() tokenHasher {
	return tokenHasher{whole: maphash.MakeSeed(), sig: maphash.MakeSeed()}
}

func (th tokenHasher) sum(token string) tokenHash {
	sig := token[strings.LastIndexByte(token, '.')+1:]
	return tokenHash{
		h:     maphash.String(th.whole, token),
		check: maphash.String(th.sig, sig) ^ uint64(len(token)),
	}
}

// hashStore is a bounded in-memory cache keyed by tokenHash, for values
// small enough to copy out: shards of slots evicted by CLOCK (a hit sets a
// bit instead of moving a list element, so a hit writes nothing shared
// but that bit), and one capacity for the whole store, not per shard, so
// that the configured number of entries is held whatever the hashes.
type hashStore[E any] struct {
	shards   []hashShard[E]
	shift    uint // shard of h is h >> shift
	capacity int64
	count    atomic.Int64
	chunk    int32
}

// hashShard is one lock's worth of a hashStore. Its counters live with it
// (padded apart from the next shard's), so cores hitting different shards
// share no cache line.
type hashShard[E any] struct {
	mu sync.RWMutex
	// index finds a slot by h: open addressing with linear probing, at
	// most three quarters full, each word the top 32 bits of h (which also
	// give the home position) above the slot number plus one; 0 is empty.
	// Eight bytes a word: about half a map's cost per entry, and a probe
	// reads no slot unless the top bits match.
	index  []uint64
	chunks [][]hashSlot[E] // slots in chunks, so growing copies nothing
	top    int32           // slots handed out so far
	free   []int32
	hand   int32
	live   int32

	hits, misses, evictions, expired atomic.Uint64
	_                                [64]byte
}

// hashSlot is one entry; expires 0 means free.
type hashSlot[E any] struct {
	h, check uint64
	expires  int64  // unix nanoseconds
	ref      uint32 // CLOCK bit, set by hits under the read lock (atomic)
	e        E
}

// newHashStore returns a store of capacity entries (at least 1).
func newHashStore[E any](capacity int) *hashStore[E] {
	capacity = max(capacity, 1)
	shards := 1
	for shards < 64 && shards*64 < capacity {
		shards *= 2
	}
	s := &hashStore[E]{shards: make([]hashShard[E], shards), capacity: int64(capacity)}
	bits := uint(0)
	for 1<<bits < shards {
		bits++
	}
	s.shift = 64 - bits
	// Chunks are sized to the share of one shard, so a small store does not
	// allocate slots it cannot use and a large one a few at a time.
	s.chunk = int32(min(max(capacity/shards/8, 8), 512))
	return s
}

// find returns the slot of h, or -1.
func (sh *hashShard[E]) find(h uint64, chunk int32) int32 {
	if len(sh.index) == 0 {
		return -1
	}
	mask := uint64(len(sh.index) - 1)
	for i := (h >> 32) & mask; ; i = (i + 1) & mask {
		w := sh.index[i]
		if w == 0 {
			return -1
		}
		if w>>32 == h>>32 {
			if slot := int32(uint32(w)) - 1; sh.slot(slot, chunk).h == h {
				return slot
			}
		}
	}
}

// insert indexes slot under h (not indexed yet), growing the index to
// stay at most three quarters full.
func (sh *hashShard[E]) insert(h uint64, slot int32, chunk int32) {
	if 4*(int(sh.live)+1) > 3*len(sh.index) {
		old := sh.index
		sh.index = make([]uint64, max(16, 2*len(old)))
		for _, w := range old {
			if w != 0 {
				sh.place(w)
			}
		}
	}
	sh.place(h>>32<<32 | uint64(slot+1))
}

func (sh *hashShard[E]) place(w uint64) {
	mask := uint64(len(sh.index) - 1)
	i := (w >> 32) & mask
	for sh.index[i] != 0 {
		i = (i + 1) & mask
	}
	sh.index[i] = w
}

// unindex removes slot's word, shifting back the words after it that
// probed past it, so that no tombstones are needed.
func (sh *hashShard[E]) unindex(h uint64, slot int32) {
	mask := uint64(len(sh.index) - 1)
	want := h>>32<<32 | uint64(slot+1)
	i := (h >> 32) & mask
	for sh.index[i] != want {
		i = (i + 1) & mask
	}
	for {
		sh.index[i] = 0
		j := i
		for {
			j = (j + 1) & mask
			w := sh.index[j]
			if w == 0 {
				return
			}
			// The word at j stays unless its home lies cyclically outside
			// (i, j]: then it moves into the hole at i.
			home := (w >> 32) & mask
			if i <= j && i < home && home <= j || i > j && (i < home || home <= j) {
				continue
			}
			sh.index[i] = w
			i = j
			break
		}
	}
}

func (s *hashStore[E]) shard(h uint64) *hashShard[E] {
	if s.shift == 64 {
		return &s.shards[0]
	}
	return &s.shards[h>>s.shift]
}

func (sh *hashShard[E]) slot(i int32, chunk int32) *hashSlot[E] {
	return &sh.chunks[i/chunk][i%chunk]
}

// get returns the entry of th live at now (unix nanoseconds), and when it
// expires.
func (s *hashStore[E]) get(th tokenHash, now int64) (E, int64, bool) {
	sh := s.shard(th.h)
	sh.mu.RLock()
	i := sh.find(th.h, s.chunk)
	if i < 0 {
		sh.mu.RUnlock()
		sh.misses.Add(1)
		var zero E
		return zero, 0, false
	}
	sl := sh.slot(i, s.chunk)
	if sl.check != th.check {
		// Another token with the same h: a miss, and the next set of this
		// one replaces it.
		sh.mu.RUnlock()
		sh.misses.Add(1)
		var zero E
		return zero, 0, false
	}
	if now >= sl.expires {
		seen := sl.expires
		sh.mu.RUnlock()
		s.remove(th, seen)
		sh.misses.Add(1)
		var zero E
		return zero, 0, false
	}
	if atomic.LoadUint32(&sl.ref) == 0 {
		atomic.StoreUint32(&sl.ref, 1)
	}
	e, expires := sl.e, sl.expires
	sh.mu.RUnlock()
	sh.hits.Add(1)
	return e, expires, true
}

// set stores e under th until expires (unix nanoseconds); now is the
// clock, for evicting expired entries first.
func (s *hashStore[E]) set(th tokenHash, e E, expires, now int64) {
	if expires <= now {
		return
	}
	sh := s.shard(th.h)
	sh.mu.Lock()
	i := sh.find(th.h, s.chunk)
	if i < 0 {
		if i = s.alloc(sh, now); i < 0 {
			sh.mu.Unlock()
			return
		}
		sh.insert(th.h, i, s.chunk)
		sh.live++
	}
	sl := sh.slot(i, s.chunk)
	*sl = hashSlot[E]{h: th.h, check: th.check, expires: expires, ref: 1, e: e}
	sh.mu.Unlock()
}

// alloc returns a free slot of sh (locked), evicting when the store is
// full; -1 when it found none (the store is full and sh empty, and
// another shard gave nothing up either).
func (s *hashStore[E]) alloc(sh *hashShard[E], now int64) int32 {
	for {
		n := s.count.Load()
		if n >= s.capacity {
			break
		}
		if s.count.CompareAndSwap(n, n+1) {
			return sh.newSlot(s.chunk)
		}
	}
	if sh.live > 0 {
		return sh.evict(s.chunk, now)
	}
	// Full, and every entry is in other shards: room is made there. The
	// lock of sh is held, so the other shards are only tried, never
	// waited for (two shards waiting for each other would deadlock).
	for j := range s.shards {
		other := &s.shards[j]
		if other == sh || !other.mu.TryLock() {
			continue
		}
		freed := false
		if other.live > 0 {
			other.release(other.evict(s.chunk, now))
			freed = true
		}
		other.mu.Unlock()
		if freed {
			// The count is unchanged: the entry moves from other to sh.
			return sh.newSlot(s.chunk)
		}
	}
	return -1
}

// newSlot hands out an unused slot.
func (sh *hashShard[E]) newSlot(chunk int32) int32 {
	if n := len(sh.free); n > 0 {
		i := sh.free[n-1]
		sh.free = sh.free[:n-1]
		return i
	}
	i := sh.top
	if i/chunk == int32(len(sh.chunks)) {
		sh.chunks = append(sh.chunks, make([]hashSlot[E], chunk))
	}
	sh.top++
	return i
}

// evict picks a victim by CLOCK (an expired entry at once), removes it
// from the index and returns its slot for reuse. sh is locked and holds
// at least one entry.
func (sh *hashShard[E]) evict(chunk int32, now int64) int32 {
	for range 2*sh.top + 1 {
		i := sh.hand
		if sh.hand++; sh.hand >= sh.top {
			sh.hand = 0
		}
		sl := sh.slot(i, chunk)
		if sl.expires == 0 {
			continue
		}
		if now < sl.expires && sl.ref != 0 {
			sl.ref = 0
			continue
		}
		if now >= sl.expires {
			sh.expired.Add(1)
		} else {
			sh.evictions.Add(1)
		}
		sh.unindex(sl.h, i)
		*sl = hashSlot[E]{}
		sh.live--
		return i
	}
	panic("tokenguard: hashStore.evict found no entry in a shard that has some")
}

// release frees slot i, whose entry has left the index.
func (sh *hashShard[E]) release(i int32) {
	sh.free = append(sh.free, i)
}

// remove deletes th's entry; with expiredAt, only the entry found expired
// at that time (not one set again since), counted as expired.
func (s *hashStore[E]) remove(th tokenHash, expiredAt int64) {
	sh := s.shard(th.h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.find(th.h, s.chunk)
	if i < 0 {
		return
	}
	sl := sh.slot(i, s.chunk)
	if sl.check != th.check || expiredAt != 0 && sl.expires != expiredAt {
		return
	}
	sh.unindex(th.h, i)
	*sl = hashSlot[E]{}
	sh.live--
	sh.release(i)
	s.count.Add(-1)
	if expiredAt != 0 {
		sh.expired.Add(1)
	}
}

// len returns the number of entries held.
func (s *hashStore[E]) len() int {
	return int(s.count.Load())
}

// stats sums the shards' counters.
func (s *hashStore[E]) stats() (hits, misses, evictions, expired uint64) {
	for i := range s.shards {
		sh := &s.shards[i]
		hits += sh.hits.Load()
		misses += sh.misses.Load()
		evictions += sh.evictions.Load()
		expired += sh.expired.Load()
	}
	return
}
