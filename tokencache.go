package tokenguard

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"math"
	"strings"
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
	// lists is the audience, the scopes and the roles, in one allocation
	// shared (read-only) by the Principals of every hit, and then, when
	// they are not found in claims as they are (escapes, a client id used
	// as subject), Subject, ClientID and TokenID.
	lists []string
	// sub, cid and jti locate Subject, ClientID and TokenID in claims.
	sub, cid, jti span32
	// nAud is the audience's length in the low 24 bits and the flags in
	// the top 8, so that the entry fits in 96 bytes.
	nAud    uint32
	nScopes uint32
	iat     int64 // unix nanoseconds, 0 when absent
	iss     *issuer
	key     *jwks.KeyLife // the key that verified it
}

// span32 is a substring of cachedToken.claims; off -1 means the string is
// in lists instead.
type span32 struct{ off, n int32 }

const (
	audNil uint32 = 1 << (24 + iota)
	scopesNil
	rolesNil
	subjectIsClient
	bound // cnf: the Binding is read from claims again on every hit

	audMask = 1<<24 - 1
)

// locate finds s in claims, or appends it to lists. Any occurrence will
// do: it is the same string.
func locate(claims, s string, lists *[]string) span32 {
	if s == "" {
		return span32{}
	}
	if i := strings.Index(claims, s); i >= 0 {
		return span32{off: int32(i), n: int32(len(s))}
	}
	*lists = append(*lists, s)
	return span32{off: -1, n: int32(len(*lists) - 1)}
}

func (c *cachedToken) str(s span32) string {
	if s.off < 0 {
		return c.lists[s.n]
	}
	return c.claims[s.off : s.off+s.n]
}

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
func (g *Guard) verifiedJWT(ctx context.Context, token string, path *TokenPath) (*Principal, *issuer, *Error) {
	th := g.cache.hasher.sum(token)
	now := g.now()
	nowNs := now.UnixNano()
	if g.cache.verified != nil {
		if c, expires, ok := g.cache.verified.get(th, nowNs); ok {
			// An entry counts only while its key is in the set and the set
			// could still vouch for it: past MaxKeyStaleness, or for a set
			// closed with its pattern issuer, the token is verified again
			// and gets that path's answer (503, or a new discovery).
			if c.key.Live() && c.iss.keys.Usable(now) == nil {
				if p := c.principal(g, expires); p != nil {
					*path = PathJWTCached
					return p, c.iss, nil
				}
			}
			if !c.key.Live() {
				g.cache.verified.remove(th, 0)
			}
		}
	}
	if r, _, ok := g.cache.refused.get(th, nowNs); ok && (r.gen == 0 || r.gen == r.iss.keys.Generation()) {
		g.cache.refusals.Add(1)
		*path = PathRefusedCache
		cp := *r.e // the handler may change what it is given
		return nil, nil, &cp
	}
	// Checked only now: a token found above passed it when cached.
	if e := checkSyntax(token); e != nil {
		return nil, nil, e
	}
	*path = PathJWT
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
		if c, ok := newCachedToken(p, by); ok {
			g.cache.verified.set(th, c, unixNano(p.Expiry.Add(by.iss.leeway)), nowNs)
		}
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

// newCachedToken returns the entry of p, or false when p cannot be kept
// exactly (a claims document over 2 GiB, an issuer not p's).
func newCachedToken(p *Principal, by voucher) (cachedToken, bool) {
	if len(p.claims) > math.MaxInt32 || len(p.Audience) > audMask || p.Issuer != by.iss.id {
		return cachedToken{}, false
	}
	n := len(p.Audience) + len(p.Scopes) + len(p.Roles)
	lists := make([]string, 0, n)
	lists = append(append(append(lists, p.Audience...), p.Scopes...), p.Roles...)
	c := cachedToken{
		claims:  p.claims,
		nAud:    uint32(len(p.Audience)),
		nScopes: uint32(len(p.Scopes)),
		iss:     by.iss,
		key:     by.key,
	}
	c.sub = locate(c.claims, p.Subject, &lists)
	c.cid = locate(c.claims, p.ClientID, &lists)
	c.jti = locate(c.claims, p.TokenID, &lists)
	c.lists = lists
	if p.SubjectIsClient {
		c.nAud |= subjectIsClient
	}
	if p.Binding.Bound() {
		if b, ok := bindingInClaims(p.claims); !ok || b != p.Binding {
			return cachedToken{}, false // verified each time rather than kept unbound
		}
		c.nAud |= bound
	}
	if !p.IssuedAt.IsZero() {
		if c.iat = unixNano(p.IssuedAt); c.iat == 0 || c.iat == math.MaxInt64 || c.iat == math.MinInt64 {
			return cachedToken{}, false // not kept exactly: verified each time
		}
	}
	if p.Audience == nil {
		c.nAud |= audNil
	}
	if p.Scopes == nil {
		c.nAud |= scopesNil
	}
	if p.Roles == nil {
		c.nAud |= rolesNil
	}
	return c, true
}

// bindingInClaims reads the cnf of a claims JSON that passed verification.
func bindingInClaims(claims string) (Binding, bool) {
	var m struct {
		Cnf json.RawMessage `json:"cnf"`
	}
	if json.Unmarshal([]byte(claims), &m) != nil || m.Cnf == nil {
		return Binding{}, false
	}
	b, err := parseBinding(m.Cnf)
	return b, err == nil
}

// principal builds the Principal of a hit whose entry expires (exp plus
// the issuer's leeway) at expires; nil when its binding cannot be read
// again (the token is then verified afresh). Its lists are the entry's,
// capped so that an append cannot reach the next list: a hit copies
// nothing but the Principal itself (and, for a bound token, its cnf).
func (c *cachedToken) principal(g *Guard, expires int64) *Principal {
	l := c.lists
	a := int(c.nAud & audMask)
	s := a + int(c.nScopes)
	r := len(l) // the roles end where the strings kept aside begin
	for _, sp := range [3]span32{c.sub, c.cid, c.jti} {
		if sp.off < 0 {
			r = min(r, int(sp.n))
		}
	}
	p := &Principal{
		Subject:         c.str(c.sub),
		ClientID:        c.str(c.cid),
		TokenID:         c.str(c.jti),
		Issuer:          c.iss.id,
		Audience:        l[:a:a],
		Scopes:          l[a:s:s],
		Roles:           l[s:r:r],
		SubjectIsClient: c.nAud&subjectIsClient != 0,
		Expiry:          expiryOf(expires, c.iss.leeway),
		Kind:            KindJWT,
		claims:          c.claims,
		guard:           g,
	}
	if c.iat != 0 {
		p.IssuedAt = time.Unix(0, c.iat)
	}
	if c.nAud&audNil != 0 {
		p.Audience = nil
	}
	if c.nAud&scopesNil != 0 {
		p.Scopes = nil
	}
	if c.nAud&rolesNil != 0 {
		p.Roles = nil
	}
	if c.nAud&bound != 0 {
		b, ok := bindingInClaims(c.claims)
		if !ok {
			return nil
		}
		p.Binding = b
	}
	return p
}

// expiryOf is the exp of an entry that expires at expires (unix
// nanoseconds, saturated by unixNano) with leeway.
func expiryOf(expires int64, leeway time.Duration) time.Time {
	if expires == math.MaxInt64 {
		return time.Unix(math.MaxInt64/int64(time.Second), 0) // an exp past 2262: far enough
	}
	return time.Unix(0, expires-int64(leeway))
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
