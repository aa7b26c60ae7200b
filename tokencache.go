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
	// Hashing reads the bytes in place: the conversion would copy a token
	// of up to MaxTokenBytes on every request.
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	return string(sum[:])
}

// verifiedJWT is verifyJWT behind the verified-token cache.
func (g *Guard) verifiedJWT(ctx context.Context, token string) (*Principal, *Error) {
	if g.tokens == nil {
		return g.verifyJWT(ctx, token)
	}
	if v, ok := g.tokens.Get(ctx, tokenKey(token)); ok {
		if !g.now().Before(v.p.Expiry.Add(g.leeway)) {
			return nil, errInvalidToken("token expired", errors.New("exp "+v.p.Expiry.UTC().String()+" (cached token)"))
		}
		// A copy, so a handler that changes its Principal cannot change the
		// next request's.
		cp := *v.p
		return &cp, nil
	}
	return g.verifyJWT(ctx, token)
}

// rememberToken caches a verified token until its exp (plus leeway).
func (g *Guard) rememberToken(token string, p *Principal, thumbprint string) {
	if g.tokens == nil {
		return
	}
	ttl := p.Expiry.Add(g.leeway).Sub(g.now())
	cp := *p // the caller's p goes to a handler, which may change it
	g.tokens.Set(context.Background(), tokenKey(token), &verifiedToken{p: &cp, issuer: p.Issuer, thumbprint: thumbprint}, ttl)
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
