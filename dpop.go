package tokenguard

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/tokenguard/tokenguard/internal/dpop"
)

// DPoPMode says whether a Guard takes DPoP-bound tokens (RFC 9449).
type DPoPMode int

// The DPoP modes.
const (
	// DPoPDisabled: only Bearer; a DPoP-bound token is refused.
	DPoPDisabled DPoPMode = iota
	// DPoPAllowed: Bearer and DPoP are both accepted; a DPoP-bound token
	// always needs its proof, and is refused as Bearer.
	DPoPAllowed
	// DPoPRequired: every token must come with a DPoP proof.
	DPoPRequired
)

// DPoPConfig configures DPoP (RFC 9449): tokens bound to a key the client
// proves it holds, with a proof signed for each request.
type DPoPConfig struct {
	// Mode is DPoPDisabled by default.
	Mode DPoPMode
	// Algorithms are the proof algorithms accepted. Nil means every
	// asymmetric algorithm the Guard verifies.
	Algorithms []string
	// Window is how old a proof's iat may be. Zero means 5 minutes.
	Window time.Duration
	// Origin is scheme://host[:port] as clients reach this API (the htu a
	// proof must name is Origin plus the request's path): behind a proxy,
	// the public origin. It defaults to the origin of the resource
	// identifier; a Guard without one needs it. Client headers (Host,
	// X-Forwarded-*) are never used. The path is the one the Guard's
	// handler sees: mount the Guard outside http.StripPrefix (or any
	// rewrite of r.URL.Path), or proofs for the public path will not match.
	Origin string
}

// dpopReplayCapacity bounds the proofs remembered against replay.
var dpopReplayCapacity = 65_536

// replayShards is the number of locks of a replayStore.
const replayShards = 64

// replayStore remembers the proofs a Guard accepted, each until it is too
// old to be accepted again. Unlike a cache it never forgets a proof that
// could still be replayed without saying so: when full it drops the entry
// that expires first and raises its horizon to that entry's end, and from
// then on refuses every proof that expires no later (it cannot tell
// whether that one was seen). A flood of valid proofs (anyone with a
// bound token of their own can sign them) thus narrows the window of
// acceptable iat values instead of opening one for replays.
type replayStore struct {
	seed   [2]maphash.Seed
	shards [replayShards]replayShard
}

type replayShard struct {
	mu      sync.Mutex
	seen    map[tokenHash]int64 // until, unix nanoseconds
	horizon int64               // every entry dropped while live ended by then
	max     int
	_       [40]byte
}

func newReplayStore(capacity int) *replayStore {
	s := &replayStore{seed: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	for i := range s.shards {
		s.shards[i].seen = make(map[tokenHash]int64)
		s.shards[i].max = max(capacity/replayShards, 1)
	}
	return s
}

// add records the proof (jkt, jti) as seen until until, in one step with
// the check: false when it was seen, or may have been (at or before the
// horizon).
func (s *replayStore) add(jkt, jti string, until, now int64) bool {
	k := jkt + "\x00" + jti
	key := tokenHash{h: maphash.String(s.seed[0], k), check: maphash.String(s.seed[1], k)}
	sh := &s.shards[key.h%replayShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if until <= sh.horizon {
		return false
	}
	if end, ok := sh.seen[key]; ok && now < end {
		return false
	}
	if _, ok := sh.seen[key]; !ok && len(sh.seen) >= sh.max {
		var first tokenHash
		firstEnd := int64(math.MaxInt64)
		for k, end := range sh.seen {
			switch {
			case now >= end:
				delete(sh.seen, k)
			case end < firstEnd:
				first, firstEnd = k, end
			}
		}
		if len(sh.seen) >= sh.max {
			delete(sh.seen, first)
			sh.horizon = max(sh.horizon, firstEnd)
			if until <= sh.horizon {
				return false
			}
		}
	}
	sh.seen[key] = until
	return true
}

// dpopState is a Guard's side of DPoPConfig.
type dpopState struct {
	mode   DPoPMode
	algs   []string
	window time.Duration
	origin string
	seen   *replayStore
}

func newDPoP(c DPoPConfig, resource string) (*dpopState, error) {
	if c.Mode == DPoPDisabled {
		return nil, nil
	}
	if c.Mode != DPoPAllowed && c.Mode != DPoPRequired {
		return nil, fmt.Errorf("tokenguard: Config.DPoP.Mode %d is not a mode", c.Mode)
	}
	origin := c.Origin
	if origin == "" && resource != "" {
		if u, err := url.Parse(resource); err == nil && u.Host != "" {
			origin = u.Scheme + "://" + u.Host
		}
	}
	if origin == "" {
		return nil, errors.New("tokenguard: Config.DPoP needs Origin (scheme://host as clients reach this API) when the Guard has no resource identifier")
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("tokenguard: Config.DPoP.Origin %q is not scheme://host[:port]", origin)
	}
	for _, a := range c.Algorithms {
		if _, err := parseAlgs([]string{a}); err != nil {
			return nil, fmt.Errorf("tokenguard: Config.DPoP.Algorithms: %w", err)
		}
	}
	d := &dpopState{mode: c.Mode, algs: c.Algorithms, window: c.Window, origin: strings.TrimSuffix(origin, "/"), seen: newReplayStore(dpopReplayCapacity)}
	return d, nil
}

// options are the proof checks for r and token.
func (d *dpopState) options(r *http.Request, token string, now time.Time) dpop.Options {
	return dpop.Options{
		Algorithms:  d.algs,
		Method:      r.Method,
		URL:         d.origin + r.URL.EscapedPath(),
		AccessToken: token,
		Now:         now,
		Window:      d.window,
	}
}

// acceptedAlgs is the algs= of a DPoP challenge.
func (d *dpopState) acceptedAlgs() string {
	return strings.Join(dpop.Options{Algorithms: d.algs}.AcceptedAlgorithms(), " ")
}

// usesDPoP reports whether the request's Authorization header is of the
// DPoP scheme.
func usesDPoP(r *http.Request) bool {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "DPoP")
}

// errDPoP is a refusal answered with a DPoP challenge.
func errDPoP(code, desc string, cause error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: code, Description: desc, Err: cause, Reason: ReasonProofRequired, scheme: schemeDPoP}
}

// checkDPoP makes a request of a DPoP Guard prove what its token is
// bound to (RFC 9449 §4.3, §7); token is the token it sent.
func (g *Guard) checkDPoP(r *http.Request, p *Principal, token string) *Error {
	d := g.dpop
	if !usesDPoP(r) {
		if p.Binding.JKT != "" {
			// §7.2: a DPoP-bound token presented as a bearer token.
			return errBound(errors.New("a DPoP-bound token (cnf.jkt) presented as Bearer"))
		}
		if d.mode == DPoPRequired {
			return errDPoP(CodeInvalidToken, "DPoP proof required", errors.New("a bearer token where DPoP is required"))
		}
		return nil
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return errDPoP(dpop.CodeInvalidProof, "exactly one DPoP proof required", fmt.Errorf("%d DPoP headers", len(proofs)))
	}
	now := g.now()
	proof, err := dpop.Verify(proofs[0], d.options(r, token, now))
	if err != nil {
		code := dpop.Code(err)
		if code == "" {
			return asError(err) // our options are wrong: 500, not the client's fault
		}
		return errDPoP(code, "invalid DPoP proof", err)
	}
	if p.Binding.JKT == "" || p.Binding.JKT != proof.Thumbprint {
		// §7.1: the token is not bound to the proof's key.
		return errDPoP(CodeInvalidToken, "token not bound to the DPoP key", errors.New("the proof's key thumbprint is not the token's cnf.jkt"))
	}
	until := proof.Expires.Add(time.Minute).UnixNano()
	if !d.seen.add(proof.Thumbprint, proof.ID, until, now.UnixNano()) {
		return errDPoP(dpop.CodeInvalidProof, "DPoP proof replayed", errors.New("a proof jti seen before, or too old for the replay store to tell"))
	}
	if g.fleet != nil && !g.fleetSeenOnce(r, proof.Thumbprint, proof.ID, time.Until(time.Unix(0, until))) {
		return errDPoP(dpop.CodeInvalidProof, "DPoP proof replayed", errors.New("a proof jti another replica saw"))
	}
	return nil
}

// fleetSeenOnce records a proof's jti for the whole fleet; false when
// another replica saw it. A failing store leaves the local check alone.
func (g *Guard) fleetSeenOnce(r *http.Request, jkt, jti string, ttl time.Duration) bool {
	f := g.fleet
	bctx, cancel := f.bounded(r.Context())
	defer cancel()
	ok, err := f.store.Lease(bctx, f.name("j", jkt, jti), f.holder, max(ttl, time.Second))
	if err != nil {
		g.storeErr("lease", err)
		return true
	}
	return ok
}
