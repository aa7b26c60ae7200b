package tokenguard

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"
	"unsafe"

	"github.com/tokenguard/tokenguard/cache"
	"github.com/tokenguard/tokenguard/jwks"
)

// verifiedToken is a JWT that passed every built-in check.
type verifiedToken struct {
	p *Principal
	voucher
}

// voucher is the key that verified a token: its issuer, whose key set
// must still be usable for the entry to count (see jwks.Set.Usable), and
// its thumbprint, so a refresh that drops the key drops the entry.
type voucher struct {
	iss        *issuer
	thumbprint string
}

func newTokenCache(size int, now func() time.Time) *cache.LRU[*verifiedToken] {
	if size < 0 {
		return nil
	}
	return cache.New[*verifiedToken](cache.Options{Capacity: size, Now: now})
}

// tokenKey is the cache key of a token: its SHA-256, never the token.
func tokenKey(token string) string {
	sum := sha256.Sum256(readOnlyBytes(token))
	return string(sum[:])
}

// readOnlyBytes views s as bytes without copying, for callees that only
// read (hashing, signature checks): a conversion would copy a token of up
// to MaxTokenBytes on every request. The result must never be written.
func readOnlyBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// verifiedJWT is verifyJWT behind the verified-token cache; key is
// tokenKey(token) when the cache is on. It also returns the issuer that
// vouched for the token.
func (g *Guard) verifiedJWT(ctx context.Context, token, key string) (*Principal, *issuer, *Error) {
	if g.tokens == nil {
		if e := checkSyntax(token); e != nil {
			return nil, nil, e
		}
		p, by, e := g.verifyJWT(ctx, token)
		return p, by.iss, e
	}
	// An entry counts only while its key set could still vouch for it: past
	// MaxKeyStaleness, or for a set closed with its pattern issuer, the
	// token is verified again and gets that path's answer (503, or a new
	// discovery).
	if v, ok := g.tokens.Get(ctx, key); ok {
		if now := g.now(); v.iss.keys.Usable(now) == nil {
			if !now.Before(v.p.Expiry.Add(v.iss.leeway)) {
				return nil, nil, errInvalidToken("token expired", errors.New("exp "+v.p.Expiry.UTC().String()+" (cached token)"))
			}
			// A copy, so a handler that changes its Principal cannot change
			// the next request's.
			return v.p.clone(), v.iss, nil
		}
	}
	// Checked only now: a token found above passed it when cached.
	if e := checkSyntax(token); e != nil {
		return nil, nil, e
	}
	p, by, e := g.verifyJWT(ctx, token)
	if e != nil {
		return nil, nil, e
	}
	// Cached until exp (plus leeway), as a copy: p goes to a handler, which
	// may change it.
	g.tokens.Set(ctx, key, &verifiedToken{p: p.clone(), voucher: by}, p.Expiry.Add(by.iss.leeway).Sub(g.now()))
	if !by.iss.keys.Has(by.thumbprint) {
		// A refresh dropped the key after it verified this token and
		// purged the key's tokens before the entry above was stored.
		g.tokens.Delete(ctx, key)
	}
	return p, by.iss, nil
}

// forgetRemovedKeys drops the cached tokens of iss whose key is not in
// keys: a key the server stopped publishing stops vouching for tokens at
// once, not when their entries expire.
func (g *Guard) forgetRemovedKeys(iss *issuer, keys []jwks.Key) {
	if g.tokens == nil {
		return
	}
	live := make(map[string]bool, len(keys))
	for _, k := range keys {
		live[k.Thumbprint] = true
	}
	g.tokens.DeleteFunc(func(v *verifiedToken) bool {
		return v.iss == iss && !live[v.thumbprint]
	})
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
}

// TokenCacheStats returns the counters of the verified-token cache; zero
// when it is off (TokenCacheSize < 0).
func (g *Guard) TokenCacheStats() TokenCacheStats {
	if in := g.started(); in != nil {
		return in.TokenCacheStats()
	}
	if g.tokens == nil {
		return TokenCacheStats{}
	}
	st := g.tokens.Stats()
	return TokenCacheStats{Hits: st.Hits, Misses: st.Misses, Evictions: st.Evictions, Expired: st.Expired, Entries: g.tokens.Len()}
}
