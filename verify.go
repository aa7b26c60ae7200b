package tokenguard

import (
	"context"
	"errors"
	"strings"

	ijws "github.com/tokenguard/tokenguard/internal/jws"
	"github.com/tokenguard/tokenguard/internal/jwt"
	"github.com/tokenguard/tokenguard/jwks"
)

// authenticateToken judges one extracted token.
func (g *Guard) authenticateToken(ctx context.Context, token string) (*Principal, *Error) {
	if !jwt.MaybeJWS(token) {
		// Opaque tokens and JWEs go to introspection when one is configured.
		return nil, errInvalidToken("token is not a JWT", errors.New("token is not a JWS compact serialization and no introspection endpoint is configured"))
	}
	return g.verifyJWT(ctx, token)
}

// verifyJWT applies RFC 8725 and RFC 9068: the header first, then the
// issuer and its key, the signature, and only then the claims.
func (g *Guard) verifyJWT(ctx context.Context, token string) (*Principal, *Error) {
	t, err := jwt.Parse(token)
	if err != nil {
		return nil, errInvalidToken("malformed token", err)
	}
	h := &t.Header
	if !g.algs[h.Alg] {
		return nil, errInvalidToken("signature algorithm not allowed", errors.New("alg "+quote(h.Alg)+" is not in the allow-list"))
	}
	if h.HasCrit {
		// No extension is understood here, so any critical one is unknown.
		return nil, errInvalidToken("unsupported critical header", errors.New("crit "+quote(strings.Join(h.Crit, ","))))
	}
	if !g.typeAllowed(h.Typ) {
		return nil, errInvalidToken("token type not accepted", errors.New("typ "+quote(h.Typ)))
	}
	// jku, x5u, x5c and jwk headers are never read: keys come only from the
	// trusted issuer's JWKS.
	c := &t.Claims
	iss, ok := g.issuers[c.Issuer]
	if !ok {
		return nil, errInvalidToken("untrusted issuer", errors.New("iss "+quote(c.Issuer)+" is not a trusted issuer"))
	}
	keys, err := iss.keys.Lookup(ctx, h.Kid, h.Alg)
	if err != nil {
		if errors.Is(err, jwks.ErrUnknownKey) {
			return nil, errInvalidToken("unknown signing key", err)
		}
		return nil, errUnavailable(g.retryAfter, err)
	}
	verified := false
	for _, k := range keys {
		if ijws.Verify(h.Alg, k.Public, []byte(t.SigningInput), t.Signature) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, errInvalidToken("invalid signature", errors.New("signature does not verify with kid "+quote(h.Kid)))
	}

	now := g.now()
	if !c.HasExpiry {
		return nil, errInvalidToken("token has no expiry", errors.New("exp claim missing"))
	}
	if !now.Before(c.Expiry.Add(g.leeway)) {
		return nil, errInvalidToken("token expired", errors.New("exp "+c.Expiry.UTC().String()))
	}
	if !c.NotBefore.IsZero() && now.Add(g.leeway).Before(c.NotBefore) {
		return nil, errInvalidToken("token not yet valid", errors.New("nbf "+c.NotBefore.UTC().String()))
	}
	if !c.IssuedAt.IsZero() && now.Add(g.leeway).Before(c.IssuedAt) {
		return nil, errInvalidToken("token issued in the future", errors.New("iat "+c.IssuedAt.UTC().String()))
	}
	if !g.cfg.InsecureSkipAudienceCheck && !containsString(c.Audience, g.audience) {
		return nil, errInvalidToken("token not meant for this resource", errors.New("aud "+quote(strings.Join(c.Audience, ","))+" lacks "+quote(g.audience)))
	}

	p := &Principal{
		Subject:  c.Subject,
		ClientID: c.ClientID,
		Issuer:   c.Issuer,
		Audience: c.Audience,
		Scopes:   mergeScopes(c.Scope, c.Scp),
		Expiry:   c.Expiry,
		IssuedAt: c.IssuedAt,
		TokenID:  c.ID,
		Kind:     KindJWT,
		claims:   t.Payload,
	}
	if g.cfg.ValidateClaims != nil {
		if err := g.cfg.ValidateClaims(ctx, p); err != nil {
			var e *Error
			if errors.As(err, &e) {
				return nil, e
			}
			return nil, errInvalidToken("token rejected by policy", err)
		}
	}
	return p, nil
}

// typeAllowed applies the typ policy. RFC 7515 §4.1.9 lets "application/"
// be omitted and media types are case-insensitive.
func (g *Guard) typeAllowed(typ string) bool {
	t := strings.ToLower(typ)
	t = strings.TrimPrefix(t, "application/")
	switch t {
	case "at+jwt":
		return true
	case "jwt", "":
		return !g.cfg.RequireATJWTType
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// quote bounds and quotes attacker-controlled text for operator errors.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '?'
		}
		return r
	}, s) + `"`
}
