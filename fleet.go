package tokenguard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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
	// Key seals every entry (HMAC-SHA256) and names the keys; at least 32
	// random bytes, the same on every replica, kept as secret as the
	// introspection credentials: whoever can write to the store but does
	// not hold it cannot make a replica accept a token. Required with
	// Store.
	Key []byte
	// Timeout bounds each call to the store; past it, the Guard carries on
	// as if it had no store. Zero means 50ms.
	Timeout time.Duration
	// LeaseTTL is how long the replica that asks about a new token keeps
	// the others waiting for its answer; after it, a waiting replica asks
	// itself. Zero means 3s.
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
}

// minFleetKey is the least length of FleetConfig.Key.
const minFleetKey = 32

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
// raw RFC 7662 answer, judged again on every read, or a refusal.
type fleetEntry struct {
	Issuer string          `json:"iss"`
	Until  int64           `json:"until"` // unix seconds: not used after
	Raw    json.RawMessage `json:"raw,omitempty"`
	Reason string          `json:"reason,omitempty"`
}

// seal MACs value under the store key it is stored at, so that an entry
// cannot be moved to another token's key either.
func (f *fleet) seal(storeKey string, value []byte) []byte {
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte(storeKey))
	m.Write([]byte{0})
	m.Write(value)
	return append(m.Sum(nil), value...)
}

// unseal returns the value of sealed, or false when its seal is wrong.
func (f *fleet) unseal(storeKey string, sealed []byte) ([]byte, bool) {
	if len(sealed) < sha256.Size {
		return nil, false
	}
	m := hmac.New(sha256.New, f.key)
	m.Write([]byte(storeKey))
	m.Write([]byte{0})
	m.Write(sealed[sha256.Size:])
	if !hmac.Equal(m.Sum(nil), sealed[:sha256.Size]) {
		return nil, false
	}
	return sealed[sha256.Size:], true
}

// bounded is ctx bounded by the store timeout.
func (f *fleet) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, f.timeout)
}

// storeErr reports a failed store call, at most once per interval.
func (g *Guard) storeErr(op string, err error) {
	g.warnOnce("fleet-store "+op, fmt.Errorf("shared store: %s: %w (carrying on with the local cache and direct calls)", op, err))
}

// answerKey is where the fleet keeps what in's issuer said of token.
func (f *fleet) answerKey(in *introspector, hash string) string {
	return f.name("a", hash, in.issuer)
}

// lookup returns the fleet's answer about token at in, judged as a fresh
// one; false when there is none, or none that holds.
func (g *Guard) fleetLookup(ctx context.Context, in *introspector, key, hash, token string) (any, error, bool) {
	f := g.fleet
	sk := f.answerKey(in, hash)
	bctx, cancel := f.bounded(ctx)
	sealed, err := f.store.Get(bctx, sk)
	cancel()
	if err != nil {
		g.storeErr("get", err)
		return nil, nil, false
	}
	if sealed == nil {
		return nil, nil, false
	}
	return g.fleetUse(ctx, in, key, sk, token, sealed)
}

// fleetUse judges a sealed entry read at sk.
func (g *Guard) fleetUse(ctx context.Context, in *introspector, key, sk, token string, sealed []byte) (any, error, bool) {
	f := g.fleet
	value, ok := f.unseal(sk, sealed)
	if !ok {
		g.warnOnce("fleet-seal", errors.New("shared store: an entry's seal does not hold (altered, forged, or sealed with another Fleet.Key): ignored"))
		return nil, nil, false
	}
	var ent fleetEntry
	if err := json.Unmarshal(value, &ent); err != nil || ent.Issuer != in.issuer || time.Unix(ent.Until, 0).Before(in.now()) {
		return nil, nil, false
	}
	if ent.Raw == nil {
		if ent.Reason == "" {
			return nil, nil, false
		}
		v := &cached{reason: ent.Reason}
		in.shared.cache.Set(ctx, key, v, in.negativeTTL)
		return v, nil, true
	}
	res, err := in.client.Judge(ent.Raw)
	var ue *introspect.UpstreamError
	if errors.As(err, &ue) {
		return nil, nil, false // cannot be read as an answer: ask
	}
	v, e := in.decide(ctx, g, key, token, res, err)
	return v, e, true
}

// fleetKeep stores what in's server said of token for the fleet.
func (g *Guard) fleetKeep(ctx context.Context, in *introspector, hash string, res *introspect.Result, reason string) {
	f := g.fleet
	ttl := in.negativeTTL
	ent := fleetEntry{Issuer: in.issuer, Reason: reason}
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
	if ttl <= 0 {
		return
	}
	ent.Until = in.now().Add(ttl + time.Second - 1).Unix()
	value, err := json.Marshal(ent)
	if err != nil {
		return
	}
	sk := f.answerKey(in, hash)
	bctx, cancel := f.bounded(ctx)
	defer cancel()
	if err := f.store.Set(bctx, sk, f.seal(sk, value), ttl); err != nil {
		g.storeErr("set", err)
	}
}

// fleetCoalesce makes one replica ask about a new token while the others
// wait for its answer: it returns the answer when another replica got
// it, and otherwise whether this one holds the lease (to release).
func (g *Guard) fleetCoalesce(ctx context.Context, in *introspector, key, hash, token string) (v any, e error, done, leased bool) {
	f := g.fleet
	lk := f.name("l", hash, in.issuer)
	bctx, cancel := f.bounded(ctx)
	ok, err := f.store.Lease(bctx, lk, f.holder, f.leaseTTL)
	cancel()
	if err != nil {
		g.storeErr("lease", err)
		return nil, nil, false, false
	}
	if ok {
		return nil, nil, false, true
	}
	sk := f.answerKey(in, hash)
	wctx, cancel := context.WithTimeout(ctx, f.leaseTTL)
	sealed, err := f.store.Wait(wctx, sk)
	cancel()
	if err != nil {
		g.storeErr("wait", err)
	}
	if sealed == nil {
		// The holder's answer may have landed as the wait ended.
		bctx, cancel := f.bounded(ctx)
		sealed, _ = f.store.Get(bctx, sk)
		cancel()
	}
	if sealed != nil {
		if v, e, ok := g.fleetUse(ctx, in, key, sk, token, sealed); ok {
			return v, e, true, false
		}
	}
	return nil, nil, false, false // the holder is gone or slow: ask
}

// fleetRelease ends this replica's lease on token.
func (g *Guard) fleetRelease(in *introspector, hash string) {
	f := g.fleet
	bctx, cancel := f.bounded(g.ctx)
	defer cancel()
	if err := f.store.Release(bctx, f.name("l", hash, in.issuer), f.holder); err != nil {
		g.storeErr("release", err)
	}
}

// fleetAllow applies the fleet's hold-back (a 429 or 503 with Retry-After
// one replica saw) and budget to a call to in's server.
func (g *Guard) fleetAllow(ctx context.Context, in *introspector) *Error {
	f := g.fleet
	hk := f.name("h", in.endpoint, in.clientID)
	bctx, cancel := f.bounded(ctx)
	sealed, err := f.store.Get(bctx, hk)
	cancel()
	if err != nil {
		g.storeErr("get", err)
	} else if v, ok := f.unseal(hk, sealed); ok && len(v) == 8 {
		if wait := time.Unix(0, int64(binary.BigEndian.Uint64(v))).Sub(in.now()); wait > 0 {
			return errUnavailable(wait, fmt.Errorf("introspection at %s held back for the fleet: the authorization server asked a replica to retry later", in.issuer))
		}
	}
	if f.budget <= 0 {
		return nil
	}
	bctx, cancel = f.bounded(ctx)
	ok, wait, err := f.store.Take(bctx, f.name("b", in.endpoint, in.clientID), f.budget, f.per)
	cancel()
	switch {
	case err != nil:
		g.storeErr("take", err) // the local limits still hold
	case !ok:
		return errUnavailable(max(wait, time.Second), fmt.Errorf("the fleet's introspection budget at %s (%d per %s) is spent", in.issuer, f.budget, f.per))
	}
	return nil
}

// fleetHold tells the fleet to hold calls to in's server back until until.
func (g *Guard) fleetHold(in *introspector, until time.Time) {
	f := g.fleet
	hk := f.name("h", in.endpoint, in.clientID)
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(until.UnixNano()))
	bctx, cancel := f.bounded(g.ctx)
	defer cancel()
	if err := f.store.Set(bctx, hk, f.seal(hk, v[:]), until.Sub(in.now())); err != nil {
		g.storeErr("set", err)
	}
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

// Forget drops what the Guard knows of token: the answers cached for it,
// here and in the fleet's store, and its verified-JWT entry, so that the
// next request with it is judged afresh (asked again, for an opaque
// token). Call it from a revocation webhook (RFC 7009 tells the
// authorization server; this tells the resource). Without it, a revoked
// token keeps working until its cached answer expires, at most
// Introspection.MaxTTL.
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
	var errs []error
	for _, iss := range g.introspectingIssuers() {
		if iss.intro == nil {
			continue
		}
		g.introspection.cache.Delete(ctx, hash+iss.intro.issuer)
		if g.fleet != nil {
			bctx, cancel := g.fleet.bounded(ctx)
			if err := g.fleet.store.Delete(bctx, g.fleet.answerKey(iss.intro, hash)); err != nil {
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
