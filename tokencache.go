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
	// issuer and thumbprint name the key that verified it, so a refresh
	// that drops the key drops the entry.
	issuer, thumbprint string
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

// verifiedJWT is verifyJWT behind the verified-token cache.
func (g *Guard) verifiedJWT(ctx context.Context, token string) (*Principal, *Error) {
	if g.tokens == nil {
		p, _, e := g.verifyJWT(ctx, token)
		return p, e
	}
	key := tokenKey(token)
	if v, ok := g.tokens.Get(ctx, key); ok {
		if !g.now().Before(v.p.Expiry.Add(g.leeway)) {
			return nil, errInvalidToken("token expired", errors.New("exp "+v.p.Expiry.UTC().String()+" (cached token)"))
		}
		// A copy, so a handler that changes its Principal cannot change the
		// next request's.
		return v.p.clone(), nil
	}
	p, thumbprint, e := g.verifyJWT(ctx, token)
	if e != nil {
		return nil, e
	}
	// Cached until exp (plus leeway), as a copy: p goes to a handler, which
	// may change it.
	g.tokens.Set(ctx, key, &verifiedToken{p: p.clone(), issuer: p.Issuer, thumbprint: thumbprint}, p.Expiry.Add(g.leeway).Sub(g.now()))
	return p, nil
}

// forgetRemovedKeys drops the cached tokens of issuer whose key is not in
// keys: a key the server stopped publishing stops vouching for tokens at
// once, not when their entries expire.
func (g *Guard) forgetRemovedKeys(issuer string, keys []jwks.Key) {
	if g.tokens == nil {
		return
	}
	live := make(map[string]bool, len(keys))
	for _, k := range keys {
		live[k.Thumbprint] = true
	}
	g.tokens.DeleteFunc(func(v *verifiedToken) bool {
		return v.issuer == issuer && !live[v.thumbprint]
	})
}
