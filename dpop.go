package tokenguard

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenguard/tokenguard/internal/dpop"
)

// DPoPMode says whether a Guard takes DPoP-bound tokens (RFC 9449).
type DPoPMode int

// The DPoP modes. The zero DPoPMode is none of them: in Config.DPoP it
// means DPoPDisabled, in TrustedIssuer.DPoP the Guard's mode.
const (
	// DPoPDisabled: only Bearer; a DPoP-bound token is refused.
	DPoPDisabled DPoPMode = iota + 1
	// DPoPAllowed: Bearer and DPoP are both accepted; a DPoP-bound token
	// always needs its proof, and is refused as Bearer.
	DPoPAllowed
	// DPoPRequired: every token must come with a DPoP proof.
	DPoPRequired
)

// String is the mode's name.
func (m DPoPMode) String() string {
	switch m {
	case 0:
		return "default"
	case DPoPDisabled:
		return "disabled"
	case DPoPAllowed:
		return "allowed"
	case DPoPRequired:
		return "required"
	}
	return fmt.Sprintf("DPoPMode(%d)", int(m))
}

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
	// NonceKey, when set, makes every proof carry a nonce this API issued
	// (RFC 9449 §8, §9): a proof without one, or with one that is too old,
	// gets 401 error="use_dpop_nonce" and a fresh nonce in the DPoP-Nonce
	// header, and the client sends the request again with it. Nonces are
	// stateless (a time step and its HMAC-SHA-256 under NonceKey), so
	// replicas that share NonceKey accept each other's nonces and keep no
	// state. NonceKey must be at least 32 random bytes and secret; a
	// single instance may take them from crypto/rand at start. Nonces
	// bound how long a proof made in advance stays usable, whatever its
	// iat says.
	NonceKey []byte
	// NonceLifetime is how often the nonce changes: a nonce is accepted
	// for one to two lifetimes after it is issued (and one lifetime early,
	// for a replica whose clock is ahead). Zero means 5 minutes.
	NonceLifetime time.Duration
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
	mode     DPoPMode            // the Guard's; DPoPDisabled when only some issuers take DPoP
	byIssuer map[string]DPoPMode // every exact issuer's mode
	patterns []patternMode       // every pattern's, in the plan's order
	algs     []string
	window   time.Duration
	origin   string
	seen     *replayStore
	keys     *dpop.KeyCache // the proof keys clients reuse, parsed once
	nonces   *nonceIssuer   // nil without Config.DPoP.NonceKey
}

// dpopKeyCacheSize bounds the proof keys remembered: one per client that
// is active at once, beyond which a client's key is parsed again.
const dpopKeyCacheSize = 4096

// minNonceKey is the shortest NonceKey taken: an HMAC key of 256 bits.
const minNonceKey = 32

func newDPoP(c DPoPConfig, resource string, plan *issuerPlan) (*dpopState, error) {
	if c.Mode < 0 || c.Mode > DPoPRequired {
		return nil, fmt.Errorf("tokenguard: Config.DPoP.Mode %d is not a mode", c.Mode)
	}
	mode := c.Mode
	if mode == 0 {
		mode = DPoPDisabled
	}
	// Every issuer's mode is kept, its own or the Guard's, so that the
	// issuer a token's iss names decides, as it decides the rest of the
	// policy: an exact entry first, then the first pattern that matches
	// (as for every other setting of a tenant).
	d := &dpopState{mode: mode, byIssuer: make(map[string]DPoPMode, len(plan.exact))}
	effective := func(m DPoPMode) DPoPMode {
		if m == 0 {
			return mode
		}
		return m
	}
	anyOn := mode != DPoPDisabled
	for _, s := range plan.exact {
		d.byIssuer[s.id] = effective(s.dpop)
		anyOn = anyOn || effective(s.dpop) != DPoPDisabled
	}
	for _, p := range plan.patterns {
		d.patterns = append(d.patterns, patternMode{p, effective(p.spec.dpop)})
		anyOn = anyOn || effective(p.spec.dpop) != DPoPDisabled
	}
	if !anyOn {
		if c.NonceKey != nil || c.NonceLifetime != 0 {
			return nil, errors.New("tokenguard: Config.DPoP.NonceKey is set but no issuer takes DPoP: set Config.DPoP.Mode")
		}
		return nil, nil
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
	switch {
	case c.NonceKey != nil:
		if len(c.NonceKey) < minNonceKey {
			return nil, fmt.Errorf("tokenguard: Config.DPoP.NonceKey has %d bytes, want at least %d random ones", len(c.NonceKey), minNonceKey)
		}
		if c.NonceLifetime < 0 || c.NonceLifetime > 0 && c.NonceLifetime < time.Second {
			return nil, fmt.Errorf("tokenguard: Config.DPoP.NonceLifetime %v is not a lifetime of a second or more", c.NonceLifetime)
		}
		d.nonces = newNonceIssuer(c.NonceKey, c.NonceLifetime)
	case c.NonceLifetime != 0:
		return nil, errors.New("tokenguard: Config.DPoP.NonceLifetime is set without a NonceKey")
	}
	d.algs, d.window, d.origin, d.seen = c.Algorithms, c.Window, strings.TrimSuffix(origin, "/"), newReplayStore(dpopReplayCapacity)
	d.keys = dpop.NewKeyCache(dpopKeyCacheSize)
	return d, nil
}

// patternMode is a pattern issuer and the DPoP mode of its tenants.
type patternMode struct {
	issuerPattern
	mode DPoPMode
}

// modeFor is the DPoP mode of the tokens of issuer.
func (d *dpopState) modeFor(issuer string) DPoPMode {
	if m, ok := d.byIssuer[issuer]; ok {
		return m
	}
	for i := range d.patterns {
		if d.patterns[i].match(issuer) {
			return d.patterns[i].mode
		}
	}
	return d.mode
}

// nonceIssuer makes and checks the stateless nonces of RFC 9449 §8: the
// number of the current time step, and its HMAC under the key. Replicas
// sharing the key agree on both without talking.
type nonceIssuer struct {
	key     []byte
	step    time.Duration
	current atomic.Pointer[issuedNonce] // the nonce of the latest step asked for
}

type issuedNonce struct {
	step  int64
	value string
}

// nonceLabel separates these MACs from any other use of the key.
const nonceLabel = "tokenguard dpop nonce v1\x00"

// nonceBytes is the decoded size of a nonce: the step and 16 bytes of MAC.
const nonceBytes = 8 + 16

func newNonceIssuer(key []byte, lifetime time.Duration) *nonceIssuer {
	if lifetime == 0 {
		lifetime = 5 * time.Minute
	}
	return &nonceIssuer{key: bytes.Clone(key), step: lifetime}
}

func (n *nonceIssuer) stepAt(now time.Time) int64 { return now.UnixNano() / int64(n.step) }

func (n *nonceIssuer) mac(step int64) []byte {
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte(nonceLabel))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(step))
	m.Write(b[:])
	return m.Sum(nil)[:nonceBytes-8]
}

// issue is the nonce of now's time step.
func (n *nonceIssuer) issue(now time.Time) string {
	step := n.stepAt(now)
	if c := n.current.Load(); c != nil && c.step == step {
		return c.value
	}
	var b [nonceBytes]byte
	binary.BigEndian.PutUint64(b[:8], uint64(step))
	copy(b[8:], n.mac(step))
	c := &issuedNonce{step: step, value: base64.RawURLEncoding.EncodeToString(b[:])}
	n.current.Store(c)
	return c.value
}

// valid reports whether nonce is one this key issued for the current
// step, the one before, or the one after (a replica whose clock is
// ahead).
func (n *nonceIssuer) valid(nonce string, now time.Time) bool {
	if base64.RawURLEncoding.DecodedLen(len(nonce)) != nonceBytes {
		return false
	}
	var b [nonceBytes]byte
	if k, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(nonce)); err != nil || k != nonceBytes {
		return false
	}
	step := int64(binary.BigEndian.Uint64(b[:8]))
	if d := n.stepAt(now) - step; d < -1 || d > 1 {
		return false
	}
	return hmac.Equal(b[8:], n.mac(step))
}

// options are the proof checks for r and token.
func (d *dpopState) options(r *http.Request, token string, now time.Time) dpop.Options {
	o := dpop.Options{
		Algorithms:  d.algs,
		Method:      r.Method,
		URL:         d.origin + r.URL.EscapedPath(),
		AccessToken: token,
		Now:         now,
		Window:      d.window,
		Keys:        d.keys,
	}
	if n := d.nonces; n != nil {
		o.Nonce = func(nonce string) bool { return n.valid(nonce, now) }
	}
	return o
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
// bound to (RFC 9449 §4.3, §7); token is the token it sent. The mode is
// that of the token's issuer.
func (g *Guard) checkDPoP(r *http.Request, p *Principal, token string) *Error {
	d := g.dpop
	mode := d.modeFor(p.Issuer)
	if !usesDPoP(r) {
		if p.Binding.JKT != "" {
			// §7.2: a DPoP-bound token presented as a bearer token.
			return withMode(errBound(errors.New("a DPoP-bound token (cnf.jkt) presented as Bearer")), mode)
		}
		if mode == DPoPRequired {
			return withMode(errDPoP(CodeInvalidToken, "DPoP proof required", errors.New("a bearer token where DPoP is required")), mode)
		}
		return nil
	}
	if mode == DPoPDisabled {
		// The scheme was taken for another issuer's sake; this one's
		// tokens are bearer tokens, and a bound one cannot be checked.
		e := errInvalidToken("DPoP not accepted for this token", errors.New("a DPoP request with a token of an issuer whose DPoP mode is disabled"))
		if p.Binding.JKT != "" {
			e = errBound(errors.New("a DPoP-bound token of an issuer whose DPoP mode is disabled"))
		}
		return withMode(e, mode)
	}
	proofs := r.Header.Values("DPoP")
	if len(proofs) != 1 {
		return withMode(errDPoP(dpop.CodeInvalidProof, "exactly one DPoP proof required", fmt.Errorf("%d DPoP headers", len(proofs))), mode)
	}
	now := g.now()
	proof, err := dpop.Verify(proofs[0], d.options(r, token, now))
	if err != nil {
		code := dpop.Code(err)
		switch code {
		case "":
			return asError(err) // our options are wrong: 500, not the client's fault
		case dpop.CodeUseNonce:
			e := errDPoP(code, "DPoP nonce required", err)
			e.DPoPNonce = d.nonces.issue(now)
			return withMode(e, mode)
		}
		return withMode(errDPoP(code, "invalid DPoP proof", err), mode)
	}
	if p.Binding.JKT == "" || p.Binding.JKT != proof.Thumbprint {
		// §7.1: the token is not bound to the proof's key.
		return withMode(errDPoP(CodeInvalidToken, "token not bound to the DPoP key", errors.New("the proof's key thumbprint is not the token's cnf.jkt")), mode)
	}
	until := proof.Expires.Add(time.Minute).UnixNano()
	if !d.seen.add(proof.Thumbprint, proof.ID, until, now.UnixNano()) {
		return withMode(errDPoP(dpop.CodeInvalidProof, "DPoP proof replayed", errors.New("a proof jti seen before, or too old for the replay store to tell")), mode)
	}
	if g.fleet != nil && !g.fleetSeenOnce(r, proof.Thumbprint, proof.ID, time.Until(time.Unix(0, until))) {
		return withMode(errDPoP(dpop.CodeInvalidProof, "DPoP proof replayed", errors.New("a proof jti another replica saw")), mode)
	}
	return nil
}

// withMode marks e as a refusal under the DPoP mode of its token's
// issuer, which its challenges then follow.
func withMode(e *Error, mode DPoPMode) *Error {
	e.dpopMode = mode
	return e
}

// DPoPNonce is the nonce a proof must carry now (RFC 9449 §8), for the
// DPoP-Nonce header of a response, or "" when the Guard issues no nonces
// (Config.DPoP.NonceKey unset). Handler, Optional and Require send it with
// every answer to a DPoP request; adapters that call Authenticate
// themselves may do the same so that clients move to a new nonce before
// their old one expires. WriteError sends it with every use_dpop_nonce
// refusal.
func (g *Guard) DPoPNonce() string {
	if in := g.started(); in != nil {
		return in.DPoPNonce()
	}
	if g.dpop == nil || g.dpop.nonces == nil {
		return ""
	}
	return g.dpop.nonces.issue(g.now())
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
