package tokenguard

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tokenguard/tokenguard/internal/jwt"
	"github.com/tokenguard/tokenguard/introspect"
)

// FleetConfig makes the replicas of a fleet share introspection through a
// SharedStore (such as Redis, with github.com/tokenguard/tokenguard/cache/redis):
// an answer one replica got is every replica's, the replicas that see a
// new token at once ask the authorization server once between them, and
// their calls can be held to one budget. Leave Store nil for none.
type FleetConfig struct {
	// Store is the shared store.
	Store SharedStore
	// Key seals every entry and names the keys; at least 32 random bytes,
	// the same on every replica, kept as secret as the introspection
	// credentials. Entries are encrypted and authenticated (AES-256-GCM
	// under a key derived from Key and the entry's store key with
	// HMAC-SHA256): whoever can read the store but does not hold Key learns
	// nothing of the answers in it (which name users, and may hold the
	// token itself when a server echoes it), and whoever can write to it
	// cannot make a replica accept a token: an entry written back (a
	// replay) holds no longer than the deadline sealed in it, and not on a
	// replica that was told to Forget the token since. Required with
	// Store.
	Key []byte
	// Timeout bounds each call to the store; past it, the request carries
	// on as if there were no store (a hung store costs a request one
	// Timeout). Zero means 50ms.
	Timeout time.Duration
	// LeaseTTL is how long the replica that asks about a new token keeps
	// the others waiting for its answer; after it, a waiting replica asks
	// itself, and for the next ten LeaseTTLs asks at once rather than wait
	// on another replica's lease (a store that grants no lease, or holders
	// that never answer, then cost one LeaseTTL, not one per token). Zero
	// means 3s.
	LeaseTTL time.Duration
	// Budget bounds the introspection calls of the whole fleet to each
	// endpoint (per client), e.g. 5 for a server that allows 5 a minute:
	// past it, requests get 503 with Retry-After until the budget refills.
	// Zero means no fleet-wide budget.
	Budget int
	// BudgetInterval is the period Budget is for. Zero means 1 minute.
	BudgetInterval time.Duration
}

// fleet is the Guard's side of a FleetConfig.
type fleet struct {
	store    SharedStore
	key      []byte
	timeout  time.Duration
	leaseTTL time.Duration
	budget   int
	per      time.Duration
	holder   string // this Guard, in leases
	// noWaitUntil (unix nanoseconds): until then, a lease another replica
	// holds is not waited on, since the last wait got no answer.
	noWaitUntil atomic.Int64
}

// minFleetKey is the least length of FleetConfig.Key.
const minFleetKey = 32

// maxFleetEntry bounds an entry's plain value: a raw answer is at most
// the introspection client's 64 KiB, plus the issuer and deadlines. A
// larger value is not stored, and a larger sealed value read back is
// refused before any work proportional to its size.
const maxFleetEntry = 128 << 10

// fleetSkew is the clock difference between replicas tolerated on the
// deadlines they write: an entry that claims to hold for longer than the
// reader would have kept it, by more than this, was written by a clock
// that runs ahead (or under another configuration), and is not used.
const fleetSkew = 5 * time.Second

// fleetNoWait is how many LeaseTTLs a replica asks at once, after a wait
// for another replica's answer got none.
const fleetNoWait = 10

func newFleet(fc FleetConfig) (*fleet, error) {
	if fc.Store == nil {
		if fc.Key != nil || fc.Budget != 0 {
			return nil, errors.New("tokenguard: Config.Fleet has a Key or Budget but no Store")
		}
		return nil, nil
	}
	if len(fc.Key) < minFleetKey {
		return nil, fmt.Errorf("tokenguard: Config.Fleet.Key must be at least %d random bytes (it seals what the replicas share); it is %d", minFleetKey, len(fc.Key))
	}
	if fc.Budget < 0 {
		return nil, errors.New("tokenguard: Config.Fleet.Budget is negative")
	}
	f := &fleet{
		store:    fc.Store,
		key:      append([]byte(nil), fc.Key...),
		timeout:  fc.Timeout,
		leaseTTL: fc.LeaseTTL,
		budget:   fc.Budget,
		per:      fc.BudgetInterval,
	}
	if f.timeout <= 0 {
		f.timeout = 50 * time.Millisecond
	}
	if f.leaseTTL <= 0 {
		f.leaseTTL = 3 * time.Second
	}
	if f.per <= 0 {
		f.per = time.Minute
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	f.holder = base64.RawURLEncoding.EncodeToString(id[:])
	return f, nil
}

// name derives a store key: kind, then a MAC of the parts, so that the
// key says nothing of the token and nobody without Key can compute it.
// (Its input starts with a one-letter kind and a zero byte; the sealing
// keys' with sealLabel: neither can be the other.)
func (f *fleet) name(kind string, parts ...string) string {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte(kind))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return kind + ":" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:24])
}

// fleetEntry is what the store holds about one token at one issuer: the
// raw RFC 7662 answer, judged again on every read, or a refusal, or (from
// the replica that held the lease and got no answer) a word to the
// replicas that waited for it.
type fleetEntry struct {
	Issuer string          `json:"iss"`
	Until  int64           `json:"until"` // unix nanoseconds: not used after
	At     int64           `json:"at"`    // unix nanoseconds: when written
	Raw    json.RawMessage `json:"raw,omitempty"`
	Reason string          `json:"reason,omitempty"`
	// Retry (nanoseconds), with neither Raw nor Reason: the fleet cannot
	// ask about the token now (its budget is spent, the server said to
	// retry later): 503 until Until. Neither Raw, Reason nor Retry: the
	// holder got no answer; ask.
	Retry int64 `json:"retry,omitempty"`
}

// sealLabel starts the input of the MAC that derives an entry's key.
const sealLabel = "tokenguard fleet seal\x00"

// sealVersion is the first byte of a sealed value.
const sealVersion = 1

const (
	sealNonce    = 12
	sealOverhead = 1 + sealNonce + 16
)

// aead returns the cipher of the entry at storeKey: AES-256-GCM under
// HMAC-SHA256(Key, sealLabel || storeKey). A key of its own per store key
// keeps the random nonces far from their bound however many entries the
// fleet writes, and binds the entry to where it is stored, as does the
// store key given as associated data: an entry moved to another token's
// key does not open.
func (f *fleet) aead(storeKey string) cipher.AEAD {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte(sealLabel))
	m.Write([]byte(storeKey))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		panic("tokenguard: AES-256 with a 32-byte key: " + err.Error())
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic("tokenguard: GCM: " + err.Error())
	}
	return gcm
}

// seal encrypts and authenticates value for the store key it is stored
// at: version, nonce, then the ciphertext and its tag.
func (f *fleet) seal(storeKey string, value []byte) []byte {
	out := make([]byte, 1+sealNonce, sealOverhead+len(value))
	out[0] = sealVersion
	_, _ = rand.Read(out[1:])
	return f.aead(storeKey).Seal(out, out[1:], value, []byte(storeKey))
}

// unseal returns the value of sealed, or false when it does not open
// (altered, forged, moved, sealed with another Fleet.Key) or is larger
// than any value the Guard seals.
func (f *fleet) unseal(storeKey string, sealed []byte) ([]byte, bool) {
	if len(sealed) < sealOverhead || len(sealed) > sealOverhead+maxFleetEntry || sealed[0] != sealVersion {
		return nil, false
	}
	value, err := f.aead(storeKey).Open(nil, sealed[1:1+sealNonce], sealed[1+sealNonce:], []byte(storeKey))
	if err != nil {
		return nil, false
	}
	return value, true
}

// bounded is ctx bounded by the store timeout.
func (f *fleet) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, f.timeout)
}

// storeErr reports a failed store call, at most once per interval.
func (g *Guard) storeErr(op string, err error) {
	g.warnOnce("fleet-store "+op, fmt.Errorf("shared store: %s: %w (carrying on with the local cache and direct calls)", op, err))
}

// warnSeal reports an entry that does not open.
func (g *Guard) warnSeal() {
	g.warnOnce("fleet-seal", errors.New("shared store: an entry's seal does not hold (altered, forged, moved, oversized, or sealed with another Fleet.Key): ignored"))
}

// answerKey is where the fleet keeps what issuer said of the token whose
// tokenKey is hash.
func (f *fleet) answerKey(issuer, hash string) string {
	return f.name("a", hash, issuer)
}

// fleetRun is one flight's use of the store, about one token at one
// issuer. Once a call to the store fails or times out, the rest of the
// flight does without it: a hung store costs a request one Timeout, not
// one per call.
type fleetRun struct {
	g    *Guard
	f    *fleet
	in   *introspector
	hash string // tokenKey of the token
	down bool
}

func (g *Guard) newFleetRun(in *introspector, hash string) *fleetRun {
	if g.fleet == nil {
		return nil
	}
	return &fleetRun{g: g, f: g.fleet, in: in, hash: hash}
}

// do runs one call to the store within Timeout, unless an earlier one of
// the flight failed; it reports whether the call was made and succeeded.
func (r *fleetRun) do(ctx context.Context, op string, call func(context.Context) error) bool {
	if r.down {
		return false
	}
	bctx, cancel := r.f.bounded(ctx)
	err := call(bctx)
	cancel()
	if err != nil {
		r.down = true
		r.g.storeErr(op, err)
		return false
	}
	return true
}

// get reads key; nil when there is nothing, or the store failed.
func (r *fleetRun) get(ctx context.Context, key string) []byte {
	var v []byte
	r.do(ctx, "get", func(ctx context.Context) (err error) {
		v, err = r.f.store.Get(ctx, key)
		return err
	})
	return v
}

// lookup returns the fleet's answer about token, judged as a fresh one;
// false when there is none, or none that holds.
func (r *fleetRun) lookup(ctx context.Context, key, token string) (any, error, bool) {
	sk := r.f.answerKey(r.in.issuer, r.hash)
	sealed := r.get(ctx, sk)
	if sealed == nil {
		return nil, nil, false
	}
	ent, ok := r.open(sk, sealed)
	if !ok {
		return nil, nil, false
	}
	return r.use(ctx, key, token, ent)
}

// open returns the entry sealed at sk when it holds now: its seal holds,
// it is the issuer's, its deadline has not passed and is no later than
// this replica would have kept it, and it was not written before the
// token was forgotten here.
func (r *fleetRun) open(sk string, sealed []byte) (*fleetEntry, bool) {
	in := r.in
	value, ok := r.f.unseal(sk, sealed)
	if !ok {
		r.g.warnSeal()
		return nil, false
	}
	var ent fleetEntry
	if err := json.Unmarshal(value, &ent); err != nil || ent.Issuer != in.issuer {
		return nil, false
	}
	left := time.Unix(0, ent.Until).Sub(in.now())
	if left <= 0 {
		return nil, false
	}
	if left > max(in.maxTTL, in.negativeTTL, r.f.leaseTTL)+fleetSkew {
		r.g.warnOnce("fleet-clock", fmt.Errorf("shared store: an entry for %s holds for %s, longer than this replica keeps any (a replica whose clock runs ahead, or with a longer MaxTTL): ignored", in.issuer, left.Round(time.Second)))
		return nil, false
	}
	if in.shared.forgottenAt(r.hash, ent.At) {
		return nil, false
	}
	return &ent, true
}

// use turns an entry into the outcome, as a fresh answer would be; false
// when it holds none (a lease holder that got no answer).
func (r *fleetRun) use(ctx context.Context, key, token string, ent *fleetEntry) (any, error, bool) {
	in := r.in
	until := time.Unix(0, ent.Until)
	if ent.Raw == nil {
		switch {
		case ent.Reason != "":
			v := &cached{reason: ent.Reason}
			in.keep(ctx, key, v, in.negativeTTL, until)
			return v, nil, true
		case ent.Retry > 0:
			wait := min(time.Duration(ent.Retry), until.Sub(in.now()))
			return nil, errUnavailable(wait, fmt.Errorf("introspection at %s: another replica of the fleet asked about this token and could not get an answer (the fleet's budget is spent, or the server asked to retry later)", in.issuer)), true
		}
		return nil, nil, false
	}
	res, err := in.client.Judge(ent.Raw)
	var ue *introspect.UpstreamError
	if errors.As(err, &ue) {
		return nil, nil, false // cannot be read as an answer: ask
	}
	v, e := in.decide(ctx, r.g, key, token, res, err, until)
	return v, e, true
}

// write seals ent at the token's key, for ttl.
func (r *fleetRun) write(ctx context.Context, ent fleetEntry, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	now := r.in.now()
	ent.Issuer, ent.At, ent.Until = r.in.issuer, now.UnixNano(), unixNano(now.Add(ttl))
	value, err := json.Marshal(ent)
	if err != nil || len(value) > maxFleetEntry {
		return
	}
	sk := r.f.answerKey(r.in.issuer, r.hash)
	sealed := r.f.seal(sk, value)
	r.do(ctx, "set", func(ctx context.Context) error { return r.f.store.Set(ctx, sk, sealed, ttl) })
}

// keep stores what the server said of the token for the fleet.
func (r *fleetRun) keep(ctx context.Context, res *introspect.Result, reason string) {
	in := r.in
	ttl := in.negativeTTL
	ent := fleetEntry{Reason: reason}
	if res != nil {
		ent.Raw = res.Raw
		if res.Active {
			ttl = in.maxTTL
			if !res.Expiry.IsZero() {
				if left := res.Expiry.Add(in.leeway).Sub(in.now()); left < ttl {
					ttl = left
				}
			}
		}
	}
	r.write(ctx, ent, ttl)
}

// noAnswer tells the replicas waiting on this one's lease that it got no
// answer: retry > 0 is a 503 for the fleet for that long (at most
// LeaseTTL: the waiters are what it is for), zero that they ask (kept a
// second at most, for the waiters of this lease, not of the next).
func (r *fleetRun) noAnswer(ctx context.Context, retry time.Duration) {
	ttl := min(r.f.leaseTTL, time.Second)
	ent := fleetEntry{}
	if retry > 0 {
		ent.Retry = int64(retry)
		ttl = min(r.f.leaseTTL, retry)
	}
	r.write(ctx, ent, ttl)
}

// coalesce makes one replica ask about a new token while the others wait
// for its answer: it returns the answer when another replica got it, and
// otherwise whether this one holds the lease (to release).
func (r *fleetRun) coalesce(ctx context.Context, key, token string) (v any, e error, done, leased bool) {
	f := r.f
	lk := f.name("l", r.hash, r.in.issuer)
	var ok bool
	if !r.do(ctx, "lease", func(ctx context.Context) (err error) {
		ok, err = f.store.Lease(ctx, lk, f.holder, f.leaseTTL)
		return err
	}) {
		return nil, nil, false, false
	}
	if ok {
		return nil, nil, false, true
	}
	// Real time, not in.now: this is about how long a request waits.
	start := time.Now()
	if start.UnixNano() < f.noWaitUntil.Load() {
		return nil, nil, false, false // the last wait got nothing: ask
	}
	sk := f.answerKey(r.in.issuer, r.hash)
	wctx, cancel := context.WithTimeout(ctx, f.leaseTTL)
	sealed, err := f.store.Wait(wctx, sk)
	cancel()
	if err != nil {
		r.down = true
		r.g.storeErr("wait", err)
	}
	if sealed == nil {
		// The holder's answer may have landed as the wait ended.
		sealed = r.get(ctx, sk)
	}
	if sealed == nil {
		if r.down || time.Since(start) < f.leaseTTL/2 {
			return nil, nil, false, false // a store that failed, or cannot wait: ask
		}
		// Nothing in LeaseTTL: the holder is gone or slow, or the store
		// grants leases to nobody. Waiting again would cost every new
		// token as much.
		f.noWaitUntil.Store(time.Now().Add(fleetNoWait * f.leaseTTL).UnixNano())
		r.g.warnOnce("fleet-wait", fmt.Errorf("shared store: waited %s for the answer of the replica holding a lease and got none (that replica is gone or slow, or the store grants no leases): asking directly for the next %s", f.leaseTTL, fleetNoWait*f.leaseTTL))
		return nil, nil, false, false
	}
	if ent, ok := r.open(sk, sealed); ok {
		if v, e, ok := r.use(ctx, key, token, ent); ok {
			return v, e, true, false
		}
	}
	return nil, nil, false, false // no answer to use: ask
}

// release ends this replica's lease on the token.
func (r *fleetRun) release() {
	lk := r.f.name("l", r.hash, r.in.issuer)
	r.do(r.g.ctx, "release", func(ctx context.Context) error { return r.f.store.Release(ctx, lk, r.f.holder) })
}

// held applies the fleet's hold-back (a 429 or 503 with Retry-After one
// replica saw) to a call to the issuer's server. It is checked before the
// lease, so that a fleet held back makes nobody wait.
func (r *fleetRun) held(ctx context.Context) *Error {
	in := r.in
	hk := r.f.name("h", in.endpoint, in.clientID)
	sealed := r.get(ctx, hk)
	if sealed == nil {
		return nil
	}
	v, ok := r.f.unseal(hk, sealed)
	if !ok || len(v) != 8 {
		r.g.warnSeal()
		return nil
	}
	wait := time.Unix(0, int64(binary.BigEndian.Uint64(v))).Sub(in.now())
	if wait > maxRetryAfter+fleetSkew {
		// No replica writes one so long (upstreamRetry bounds it): the
		// writer's clock runs ahead.
		r.g.warnOnce("fleet-clock", fmt.Errorf("shared store: the fleet's hold-back of %s lasts %s, longer than any a replica writes (a replica whose clock runs ahead): ignored", in.issuer, wait.Round(time.Second)))
		return nil
	}
	if wait > 0 {
		return errUnavailable(wait, fmt.Errorf("introspection at %s held back for the fleet: the authorization server asked a replica to retry later", in.issuer))
	}
	return nil
}

// take takes a unit of the fleet's budget for a call to the issuer's
// server. A store that fails leaves the local limits to hold.
func (r *fleetRun) take(ctx context.Context) *Error {
	f, in := r.f, r.in
	if f.budget <= 0 {
		return nil
	}
	var ok bool
	var wait time.Duration
	if !r.do(ctx, "take", func(ctx context.Context) (err error) {
		ok, wait, err = f.store.Take(ctx, f.name("b", in.endpoint, in.clientID), f.budget, f.per)
		return err
	}) || ok {
		return nil
	}
	// The bucket refills within the interval, whatever the store says.
	return errUnavailable(max(min(wait, f.per), time.Second), fmt.Errorf("the fleet's introspection budget at %s (%d per %s) is spent", in.issuer, f.budget, f.per))
}

// hold tells the fleet to hold calls to the issuer's server back until
// until.
func (r *fleetRun) hold(until time.Time) {
	in := r.in
	hk := r.f.name("h", in.endpoint, in.clientID)
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(until.UnixNano()))
	sealed := r.f.seal(hk, v[:])
	r.do(r.g.ctx, "set", func(ctx context.Context) error { return r.f.store.Set(ctx, hk, sealed, until.Sub(in.now())) })
}

// introspectingIssuers returns the issuers known now: the exact ones and
// the pattern tenants kept.
func (g *Guard) introspectingIssuers() []*issuer {
	out := make([]*issuer, 0, len(g.issuers))
	for _, iss := range g.issuers {
		out = append(out, iss)
	}
	if g.dynamic != nil {
		out = append(out, g.dynamic.live.Values()...)
	}
	return out
}

// forgetIssuers returns the issuers that may hold an answer about token:
// every exact issuer and pattern tenant kept that introspects, and the
// pattern tenant the token names (its RouteOpaque route, or a JWT's iss)
// even when this replica keeps it no longer, or never did: the fleet may.
func (g *Guard) forgetIssuers(token string) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, iss := range g.introspectingIssuers() {
		if iss.intro != nil {
			add(iss.intro.issuer)
		}
	}
	if g.dynamic == nil {
		return ids
	}
	id := jwt.PeekIssuer(token)
	if id == "" && g.router.hook != nil {
		id = g.router.hook(token) // as an opaque token is routed
	}
	if id != "" && g.issuers[id] == nil {
		if spec, ok := g.dynamic.specFor(id); ok && spec.introspection != nil {
			add(id)
		}
	}
	return ids
}

// Forget drops what the Guard knows of token: the answers cached for it,
// here and in the fleet's store, and its verified-JWT entry, so that the
// next request with it is judged afresh (asked again, for an opaque
// token). Call it from a revocation webhook (RFC 7009 tells the
// authorization server; this tells the resource). Without it, a revoked
// token keeps working until its cached answer expires, at most
// Introspection.MaxTTL.
//
// This Guard also remembers, for as long as any answer could be kept,
// that it forgot the token: an answer about it from before (one written
// back to the store, or brought back by an introspection in flight) is not
// used or kept. Other replicas keep their own cached answers: a webhook
// calls Forget on each, or their answers live at most MaxTTL.
func (g *Guard) Forget(ctx context.Context, token string) error {
	if in := g.started(); in != nil {
		return in.Forget(ctx, token)
	}
	if g.cache != nil && g.cache.verified != nil {
		g.cache.verified.remove(g.cache.hasher.sum(token), 0)
	}
	if g.introspection == nil {
		return nil
	}
	hash := tokenKey(token)
	// Remembered first, then dropped: a flight that cached its answer
	// before the drop finds the mark after it (see introspector.call).
	g.introspection.forget(ctx, hash, g.now())
	var errs []error
	for _, id := range g.forgetIssuers(token) {
		g.introspection.cache.Delete(ctx, hash+id)
		if g.fleet != nil {
			bctx, cancel := g.fleet.bounded(ctx)
			if err := g.fleet.store.Delete(bctx, g.fleet.answerKey(id, hash)); err != nil {
				errs = append(errs, err)
			}
			cancel()
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("tokenguard: forget: shared store: %w", errors.Join(errs...))
	}
	return nil
}
