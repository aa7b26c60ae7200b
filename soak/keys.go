package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tokenguard/tokenguard/oauthtest"
)

// Key rotation with exact expectations.
//
// A request whose expectation depends on the Guard knowing a key (a valid
// JWT must be accepted; an expired, wrong-audience or kid-forged one must
// get exactly 401, with no key-set fetch that could fail) is sent only with
// a key in state known, and holds the key's read lock for the whole
// request. A key becomes known only once a probe token it signed was
// accepted, which proves the Guard's current set holds it; from then on
// every successful refresh holds it too (it stays published) and a failed
// one keeps the last good set, so the Guard keeps it until it is retired.
// To retire a key, the rotator takes its write lock, which waits for every
// request in flight with it, marks it draining (no new request picks it),
// and only then removes it from the JWK Set. Its tokens are sent again,
// now as tokens that must be refused, only once the Guard has provably
// dropped it: a fresh token it signed got 401, and a later key-set fetch
// started, so the refresh that dropped the key has also purged the tokens
// it had verified from the token cache (flights are serial; the purge runs
// inside the flight, after the new set is stored).

type keyState int

const (
	published keyState = iota // in the JWK Set, not yet seen to be known by the Guard
	known                     // the Guard verifies with it; valid tokens may use it
	draining                  // being retired: no new request uses it
	retired                   // out of the JWK Set; the Guard may still hold it
)

// key is one signing key of the authorization server.
type key struct {
	kid, alg string

	mu    sync.RWMutex // read-held by each request that needs the key known
	state keyState     // written with mu held for writing

	ringMu sync.Mutex
	ring   []issued // tokens it signed that were accepted, for reuse
	next   int
}

// issued is a token and the subject the API must answer for it.
type issued struct{ token, sub string }

const ringSize = 64

// remember keeps an accepted token for reuse (which hits the token cache).
func (k *key) remember(t issued) {
	k.ringMu.Lock()
	defer k.ringMu.Unlock()
	if len(k.ring) < ringSize {
		k.ring = append(k.ring, t)
		return
	}
	k.ring[k.next] = t
	k.next = (k.next + 1) % ringSize
}

// recall returns one remembered token, if any.
func (k *key) recall(r *rand.Rand) (issued, bool) {
	k.ringMu.Lock()
	defer k.ringMu.Unlock()
	if len(k.ring) == 0 {
		return issued{}, false
	}
	return k.ring[r.IntN(len(k.ring))], true
}

// keyring is every key of the run: live ones (published to retired) and
// the last few that the Guard has provably dropped.
type keyring struct {
	mu      sync.Mutex
	live    []*key
	dropped []*key // most recent last

	rotations, retirements int
}

const keepDropped = 8

func (kr *keyring) add(k *key) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	kr.live = append(kr.live, k)
}

func (kr *keyring) all() []*key {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	return append([]*key(nil), kr.live...)
}

// acquire returns a known key with its read lock held, or nil when none
// can be had without waiting. The caller must release it with RUnlock.
func (kr *keyring) acquire(r *rand.Rand) *key {
	ks := kr.all()
	if len(ks) == 0 {
		return nil
	}
	off := r.IntN(len(ks))
	for i := range ks {
		k := ks[(off+i)%len(ks)]
		if !k.mu.TryRLock() {
			continue // a retirement is waiting for its requests
		}
		if k.state == known {
			return k
		}
		k.mu.RUnlock()
	}
	return nil
}

// gone returns a key the Guard has provably dropped, or nil.
func (kr *keyring) gone(r *rand.Rand) *key {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if len(kr.dropped) == 0 {
		return nil
	}
	return kr.dropped[r.IntN(len(kr.dropped))]
}

// drop moves k from live to dropped.
func (kr *keyring) drop(k *key) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	for i, l := range kr.live {
		if l == k {
			kr.live = append(kr.live[:i], kr.live[i+1:]...)
			break
		}
	}
	kr.dropped = append(kr.dropped, k)
	if len(kr.dropped) > keepDropped {
		kr.dropped = kr.dropped[1:]
	}
	kr.retirements++
}

// knownOf returns the known keys of alg other than except.
func (kr *keyring) knownOf(alg string, except *key) []*key {
	var out []*key
	for _, k := range kr.all() {
		if k == except || k.alg != alg {
			continue
		}
		k.mu.RLock()
		st := k.state
		k.mu.RUnlock()
		if st == known {
			out = append(out, k)
		}
	}
	return out
}

func (k *key) setState(st keyState) {
	k.mu.Lock()
	k.state = st
	k.mu.Unlock()
}

// rotate rotates one algorithm's key every RotateEvery, round the
// algorithms (the cheapest keys first), until stop.
func (s *soak) rotate(stop <-chan struct{}) {
	t := time.NewTicker(s.o.RotateEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.rotateOne(stop, algorithms[(len(algorithms)-1-i%len(algorithms))])
	}
}

// rotateOne publishes a new key for alg, waits until the Guard knows it,
// then retires the previous keys of alg, each until the Guard dropped it.
func (s *soak) rotateOne(stop <-chan struct{}, alg string) {
	k := &key{kid: s.as.RotateKey(alg), alg: alg}
	s.keys.add(k)
	s.keys.mu.Lock()
	s.keys.rotations++
	s.keys.mu.Unlock()
	if !s.confirmKnown(stop, k, time.Time{}) {
		return // the run ended first; the key stays published and unused
	}
	for _, old := range s.keys.knownOf(alg, k) {
		old.setState(draining) // waits for every request in flight with it
		s.as.RetireKey(old.kid)
		old.setState(retired)
		if !s.confirmDropped(stop, old) {
			return // never sent again: its expectation is not exact
		}
		s.keys.drop(old)
	}
}

// confirmKnown sends fresh tokens signed by k until one is accepted, then
// marks k known. It gives up at stop or deadline (when not zero).
func (s *soak) confirmKnown(stop <-chan struct{}, k *key, deadline time.Time) bool {
	for {
		sub := s.subject("p")
		out := s.send(s.as.MintWith(oauthtest.MintOptions{KeyID: k.kid, Claims: oauthtest.Claims{"sub": sub}}))
		s.stats.control.Add(1)
		if out.status == 200 {
			if out.body != sub {
				s.stats.fail(&s.stats.wrongPrincipals, s.since(out.sent), "probe", "known-key probe", out)
				return false
			}
			k.setState(known)
			return true
		}
		// 401 (unknown key, refresh rate-limited) or 503 (refresh failed)
		// are what a key the Guard has not fetched yet gets.
		s.stats.probeMisses.Add(1)
		if !pause(stop, 50*time.Millisecond) || !deadline.IsZero() && time.Now().After(deadline) {
			return false
		}
	}
}

// confirmDropped sends fresh tokens signed by the retired key k until one
// is refused with 401, then waits for a key-set fetch to start after that
// answer (see the comment at the top).
func (s *soak) confirmDropped(stop <-chan struct{}, k *key) bool {
	for {
		out := s.send(s.as.MintWith(oauthtest.MintOptions{KeyID: k.kid, Claims: oauthtest.Claims{"sub": s.subject("p")}}))
		s.stats.control.Add(1)
		if out.status == 401 {
			for !s.up.startedAfter(epJWKS, out.recv) {
				if !pause(stop, 20*time.Millisecond) {
					return false
				}
			}
			return true
		}
		// 200: the Guard has not refreshed yet; 503: a refresh failed.
		s.stats.probeMisses.Add(1)
		if !pause(stop, 50*time.Millisecond) {
			return false
		}
	}
}

// pause sleeps for d and reports false if stop closed first.
func pause(stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
		return false
	case <-t.C:
		return true
	}
}

func (s *soak) subject(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, s.seq.Add(1))
}
