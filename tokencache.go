package tokenguard

import (
	"context"
	"crypto/sha256"
	"math"
	"sync/atomic"
	"time"

	"github.com/tokenguard/tokenguard/jwks"
)

// refusalCacheSize bounds the cache of refused JWTs.
const refusalCacheSize = 4096

// refusalTTL is how long a refusal is remembered.
const refusalTTL = 5 * time.Minute

// cachedToken is a JWT that passed every built-in check, kept compact:
// what a cache hit needs to build its Principal, and the claims JSON
// (which every string of it views, unless it had escapes), but neither
// the token nor its header and signature.
type cachedToken struct {
	claims string
	// lists is Subject, ClientID, TokenID and Issuer, then the audience,
	// the scopes and the roles: one allocation, shared (read-only) by the
	// Principals of every hit.
	lists           []string
	nAud, nScopes   uint32
	expSec, iatSec  int64
	expNsec, iatNs  int32
	flags           uint8
	iss             *issuer
	key             *jwks.KeyLife // the key that verified it
	subjectIsClient bool
}

const (
	audNil uint8 = 1 << iota
	scopesNil
	rolesNil
)

// verifiedToken is what verifyJWT found besides the Principal: the
// issuer whose key verified it, and that key.
type voucher struct {
	iss *issuer
	key *jwks.KeyLife
}

// refusal is a JWT refused for a reason that will not change soon: an
// expiry in the past, a missing exp, an audience not accepted, or a
// signature that does not verify (for as long as the key set is the same:
// gen). A token sent again gets the same answer without a signature check.
type refusal struct {
	e   *Error
	iss *issuer
	gen uint64 // the key-set generation the refusal holds for; 0: any
}

// tokenCaches are the in-memory caches of JWTs.
type tokenCaches struct {
	hasher   tokenHasher
	verified *hashStore[cachedToken] // nil when off
	refused  *hashStore[refusal]
	refusals atomic.Uint64 // requests answered from refused
}

func newTokenCaches(size int) *tokenCaches {
	c := &tokenCaches{hasher: newTokenHasher(), refused: newHashStore[refusal](refusalCacheSize)}
	if size == 0 {
		size = 10_000
	}
	if size > 0 {
		c.verified = newHashStore[cachedToken](size)
	}
	return c
}

// tokenKey is the key of a token in the introspection cache and shared
// stores: its SHA-256, never the token.
func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return string(sum[:])
}

// unixNano is t in unix nanoseconds, saturated, so that an exp past 2262
// stays far in the future instead of wrapping.
func unixNano(t time.Time) int64 {
	const limit = math.MaxInt64/int64(time.Second) - 1
	switch s := t.Unix(); {
	case s > limit:
		return math.MaxInt64
	case s < -limit:
		return math.MinInt64
	}
	return t.UnixNano()
}

// verifiedJWT is verifyJWT behind the caches of verified and of refused
// tokens. It also returns the issuer that vouched for the token.
func (g *Guard) verifiedJWT(ctx context.Context, token string) (*Principal, *issuer, *Error) {
	th := g.cache.hasher.sum(token)
	now := g.now()
	nowNs := now.UnixNano()
	if g.cache.verified != nil {
		if c, ok := g.cache.verified.get(th, nowNs); ok {
			// An entry counts only while its key is in the set and the set
			// could still vouch for it: past MaxKeyStaleness, or for a set
			// closed with its pattern issuer, the token is verified again
			// and gets that path's answer (503, or a new discovery).
			if c.key.Live() && c.iss.keys.Usable(now) == nil {
				return c.principal(g), c.iss, nil
			}
			if !c.key.Live() {
				g.cache.verified.remove(th, 0)
			}
		}
	}
	if r, ok := g.cache.refused.get(th, nowNs); ok && (r.gen == 0 || r.gen == r.iss.keys.Generation()) {
		g.cache.refusals.Add(1)
		cp := *r.e // the handler may change what it is given
		return nil, nil, &cp
	}
	// Checked only now: a token found above passed it when cached.
	if e := checkSyntax(token); e != nil {
		return nil, nil, e
	}
	p, by, gen, e := g.verifyJWT(ctx, token)
	if e != nil {
		if gen != 0 || remembered(e) {
			kept := *e // e goes to this request's handler, which may change it
			g.cache.refused.set(th, refusal{e: &kept, iss: by.iss, gen: gen}, nowNs+int64(refusalTTL), nowNs)
		}
		return nil, nil, e
	}
	if g.cache.verified != nil {
		// Cached until exp plus leeway; the entry is built anew, so the
		// handler of this request, which gets p, cannot change it.
		g.cache.verified.set(th, newCachedToken(p, by), unixNano(p.Expiry.Add(by.iss.leeway)), nowNs)
		if !by.key.Live() {
			// A refresh dropped the key after it verified this token.
			g.cache.verified.remove(th, 0)
		}
	}
	return p, by.iss, nil
}

// remembered reports whether a refusal that depends on no key set may be
// cached: it cannot turn into an acceptance while the entry lives.
func remembered(e *Error) bool {
	if e.introspectable || e.Status != 401 {
		return false
	}
	switch e.Reason {
	case ReasonTokenExpired, ReasonTokenNoExpiry, ReasonAudienceMismatch:
		return true
	}
	return false
}

func newCachedToken(p *Principal, by voucher) cachedToken {
	lists := make([]string, 0, 4+len(p.Audience)+len(p.Scopes)+len(p.Roles))
	lists = append(lists, p.Subject, p.ClientID, p.TokenID, p.Issuer)
	lists = append(append(append(lists, p.Audience...), p.Scopes...), p.Roles...)
	c := cachedToken{
		claims:          p.claims,
		lists:           lists,
		nAud:            uint32(len(p.Audience)),
		nScopes:         uint32(len(p.Scopes)),
		expSec:          p.Expiry.Unix(),
		expNsec:         int32(p.Expiry.Nanosecond()),
		iss:             by.iss,
		key:             by.key,
		subjectIsClient: p.SubjectIsClient,
	}
	if !p.IssuedAt.IsZero() {
		c.iatSec, c.iatNs = p.IssuedAt.Unix(), int32(p.IssuedAt.Nanosecond())
	}
	if p.Audience == nil {
		c.flags |= audNil
	}
	if p.Scopes == nil {
		c.flags |= scopesNil
	}
	if p.Roles == nil {
		c.flags |= rolesNil
	}
	return c
}

// principal builds the Principal of a hit. Its lists are the entry's,
// capped so that an append cannot reach the next list: a hit copies
// nothing but the Principal itself.
func (c *cachedToken) principal(g *Guard) *Principal {
	l := c.lists
	a, s := 4+int(c.nAud), 4+int(c.nAud)+int(c.nScopes)
	p := &Principal{
		Subject:         l[0],
		ClientID:        l[1],
		TokenID:         l[2],
		Issuer:          l[3],
		Audience:        l[4:a:a],
		Scopes:          l[a:s:s],
		Roles:           l[s:len(l):len(l)],
		SubjectIsClient: c.subjectIsClient,
		Expiry:          time.Unix(c.expSec, int64(c.expNsec)),
		Kind:            KindJWT,
		claims:          c.claims,
		guard:           g,
	}
	if c.iatSec != 0 || c.iatNs != 0 {
		p.IssuedAt = time.Unix(c.iatSec, int64(c.iatNs))
	}
	if c.flags&audNil != 0 {
		p.Audience = nil
	}
	if c.flags&scopesNil != 0 {
		p.Scopes = nil
	}
	if c.flags&rolesNil != 0 {
		p.Roles = nil
	}
	return p
}

// TokenCacheStats reports the verified-token cache's counters.
type TokenCacheStats struct {
	// Hits are requests whose token was found (and then checked for exp);
	// Misses are JWT-shaped tokens that were not, including malformed
	// ones rejected right after the look-up.
	Hits, Misses uint64
	// Evictions are entries dropped for room; Expired, entries found past
	// their lifetime.
	Evictions, Expired uint64
	// Entries is the number of tokens cached now.
	Entries int
	// Refused counts the requests answered from the cache of refused
	// tokens (a token sent again after an invalid signature, an expiry or
	// a wrong audience, answered without a second signature check);
	// RefusedEntries is its size now (at most 4,096).
	Refused        uint64
	RefusedEntries int
}

// TokenCacheStats returns the counters of the verified-token cache (zero
// when it is off, TokenCacheSize < 0) and of the cache of refused tokens.
func (g *Guard) TokenCacheStats() TokenCacheStats {
	if in := g.started(); in != nil {
		return in.TokenCacheStats()
	}
	var st TokenCacheStats
	if g.cache == nil {
		return st // not started yet (Config.RetryStartup)
	}
	if g.cache.refused != nil {
		st.Refused = g.cache.refusals.Load()
		st.RefusedEntries = g.cache.refused.len()
	}
	if g.cache.verified == nil {
		return st
	}
	st.Hits, st.Misses, st.Evictions, st.Expired = g.cache.verified.stats()
	st.Entries = g.cache.verified.len()
	return st
}
