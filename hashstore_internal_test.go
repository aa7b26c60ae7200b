package tokenguard

import (
	"fmt"
	"sync"
	"testing"
)

func th(i int) tokenHash { return tokenHash{h: uint64(i)*0x9E3779B97F4A7C15 + 1, check: uint64(i)} }

// The configured capacity holds exactly, whatever the spread of the
// hashes over the shards; one more entry evicts one.
func TestHashStoreCapacityHolds(t *testing.T) {
	for _, capacity := range []int{1, 7, 100, 10_000} {
		s := newHashStore[int](capacity)
		for i := range capacity {
			s.set(th(i), i, 1000, 1)
		}
		if n := s.len(); n != capacity {
			t.Fatalf("capacity %d: holds %d", capacity, n)
		}
		for i := range capacity {
			if v, _, ok := s.get(th(i), 2); !ok || v != i {
				t.Fatalf("capacity %d: entry %d lost (%v %v)", capacity, i, v, ok)
			}
		}
		s.set(th(capacity), capacity, 1000, 1)
		_, _, evicted, _ := s.stats()
		if n := s.len(); n != capacity || evicted != 1 {
			t.Errorf("capacity %d, one more: holds %d, evicted %d", capacity, n, evicted)
		}
		if _, _, ok := s.get(th(capacity), 2); !ok {
			t.Errorf("capacity %d: the newest entry was not kept", capacity)
		}
	}
}

// All the hashes in one shard while the others are empty: the store still
// fills to capacity, and when full an insert into an empty shard takes
// room from another.
func TestHashStoreSkewedShards(t *testing.T) {
	s := newHashStore[int](1000)
	same := func(i int) tokenHash { return tokenHash{h: uint64(i), check: uint64(i)} } // top bits 0: shard 0
	for i := range 1000 {
		s.set(same(i), i, 1000, 1)
	}
	if s.len() != 1000 {
		t.Fatalf("holds %d", s.len())
	}
	other := tokenHash{h: 1 << 63, check: 7}
	s.set(other, 42, 1000, 1)
	if v, _, ok := s.get(other, 2); !ok || v != 42 || s.len() != 1000 {
		t.Errorf("insert into an empty shard of a full store: %v %v, holds %d", v, ok, s.len())
	}
}

// CLOCK: an entry hit since the hand last passed survives an eviction, an
// expired one goes first, and an entry whose check differs is a miss.
func TestHashStoreEviction(t *testing.T) {
	s := newHashStore[int](3)
	s.set(th(0), 0, 1000, 1)
	s.set(th(1), 1, 5, 1) // expires at 5
	s.set(th(2), 2, 1000, 1)
	s.set(th(3), 3, 1000, 10) // full: the expired one goes
	if _, _, ok := s.get(th(1), 10); ok {
		t.Error("the expired entry is still there")
	}
	for _, i := range []int{0, 2, 3} {
		if _, _, ok := s.get(th(i), 10); !ok {
			t.Errorf("entry %d was evicted before the expired one", i)
		}
	}
	if _, _, ok := s.get(tokenHash{h: th(0).h, check: 99}, 10); ok {
		t.Error("a different check hit")
	}
	if _, _, ok := s.get(th(0), 1000); ok {
		t.Error("an entry at its expiry hit")
	}
}

// Concurrent gets, sets and removes keep the count and the index in step
// (run with -race).
func TestHashStoreConcurrent(t *testing.T) {
	s := newHashStore[string](500)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				k := th((i*7 + w) % 2000)
				switch i % 3 {
				case 0:
					s.set(k, fmt.Sprint(i), 1000, 1)
				case 1:
					s.get(k, 2)
				default:
					s.remove(k, 0)
				}
			}
		}()
	}
	wg.Wait()
	live := 0
	for i := range s.shards {
		sh := &s.shards[i]
		words := 0
		for _, w := range sh.index {
			if w != 0 {
				words++
				if slot := int32(uint32(w)) - 1; sh.find(sh.slot(slot, s.chunk).h, s.chunk) != slot {
					t.Errorf("shard %d: slot %d is indexed but not found", i, slot)
				}
			}
		}
		if words != int(sh.live) {
			t.Errorf("shard %d: index %d, live %d", i, words, sh.live)
		}
		live += int(sh.live)
	}
	if live != s.len() || live > 500 {
		t.Errorf("live %d, count %d (capacity 500)", live, s.len())
	}
}
