package tokenguard

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"
)

// TokenKind says how a token was validated.
type TokenKind int

const (
	// KindJWT is a JWT access token verified locally against the issuer's keys.
	KindJWT TokenKind = iota + 1
	// KindOpaque is a token the authorization server vouched for by introspection.
	KindOpaque
)

func (k TokenKind) String() string {
	switch k {
	case KindJWT:
		return "jwt"
	case KindOpaque:
		return "opaque"
	}
	return "unknown"
}

// Principal is the authenticated caller, as the access token describes it.
type Principal struct {
	// Subject is the sub claim: the user, or the client for machine tokens.
	Subject string
	// ClientID is the client_id claim (RFC 9068 §2.2).
	ClientID string
	// Issuer is the trusted issuer that vouched for the token.
	Issuer string
	// Audience is the aud claim, always as a list.
	Audience []string
	// Scopes is the union of the space-separated scope claim and the scp
	// claim, without duplicates, in the order they appear.
	Scopes []string
	// Expiry is the exp claim.
	Expiry time.Time
	// IssuedAt is the iat claim; zero when absent.
	IssuedAt time.Time
	// TokenID is the jti claim; empty when absent.
	TokenID string
	// Kind says how the token was validated.
	Kind TokenKind

	claims []byte
	// guard is the Guard that authenticated the token; RequireScopes of
	// another Guard (another issuer, another audience) does not trust it.
	guard *Guard
}

// HasScope reports whether the token grants scope.
func (p *Principal) HasScope(scope string) bool {
	return slices.Contains(p.Scopes, scope)
}

// Claims decodes every claim of the token into v, like json.Unmarshal.
func (p *Principal) Claims(v any) error {
	if len(p.claims) == 0 {
		return errors.New("tokenguard: principal has no claims")
	}
	return json.Unmarshal(p.claims, v)
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p. Handler does this for
// every authenticated request; tests and adapters may call it directly.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the Principal that Handler put in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

func mergeScopes(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]string, 0, len(a)+len(b))
	for _, s := range append(a[:len(a):len(a)], b...) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
