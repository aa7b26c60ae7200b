package tokenguard

import (
	"context"
	"encoding/json"
	"errors"
	"hash/maphash"
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
//
// Each request gets a Principal of its own, but its lists (Audience,
// Scopes, Roles) are shared with every other request that sends the same
// token, so that a token seen before costs no copy of a thousand scopes:
// read them, append to them (their capacity is clipped, so an append
// copies), or replace them, but never write their elements; use
// slices.Clone to change one in place.
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
	// claim, without duplicates, in the order they appear; with
	// Config.ScopeClaim, the values of that claim instead. Scope
	// requirements (AllScopes, AnyScope) and HasScope read it.
	Scopes []string
	// Roles are the values of the issuer's TokenShape.RoleClaims (such as
	// Keycloak's realm_access.roles or Entra ID's roles), without
	// duplicates; nil when the issuer has none. AnyRole and AllRoles read
	// them.
	Roles []string
	// SubjectIsClient is true when the token has no sub and Subject is its
	// client id (TokenShape.ClientAsSubject): the caller is a client acting
	// for itself, not a user.
	SubjectIsClient bool
	// Expiry is the exp claim.
	Expiry time.Time
	// IssuedAt is the iat claim; zero when absent.
	IssuedAt time.Time
	// TokenID is the jti claim; empty when absent.
	TokenID string
	// Kind says how the token was validated.
	Kind TokenKind
	// Binding is what the token is bound to (cnf), which the request
	// proved possession of; zero for a bearer token.
	Binding Binding

	claims string // the claims JSON; the strings above may be views of it
	// scopesHoldToken says that Scopes, as a 403's record would name them,
	// hold the token or a piece of it (an introspection answer that echoed
	// it), so the record does not name them.
	scopesHoldToken bool
	// guard is the Guard that authenticated the token; RequireScopes of
	// another Guard (another issuer, another audience) does not trust it.
	guard *Guard
}

// HasScope reports whether the token grants scope.
func (p *Principal) HasScope(scope string) bool {
	return slices.Contains(p.Scopes, scope)
}

// Claims decodes every claim of the token into v, like json.Unmarshal.
//
// Beware that encoding/json matches member names to struct fields without
// regard to case: a claim "WorkSpace" (or "workſpace") fills a field tagged
// `json:"workspace"`, while ClaimIs("workspace", ...) and the built-in
// checks, which match names exactly, do not see it. Claim sets with two
// names that fold together are refused, so one name cannot shadow
// another; but a token that has only the odd-cased name still fills the
// field. Where a claim decides access, check it with ClaimIs, or decode
// into a map[string]any, whose keys are exact.
func (p *Principal) Claims(v any) error {
	if len(p.claims) == 0 {
		return errors.New("tokenguard: principal has no claims")
	}
	return json.Unmarshal([]byte(p.claims), v)
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p. Handler does this for
// every authenticated request; tests and adapters may call it directly.
// Requirements (Require, RequireScopes, Check) honour only a Principal
// that the same Guard authenticated: for any other (one built by hand, or
// another Guard's) they authenticate the request's token instead. For
// handler tests, oauthtest.Server.Principal returns a genuine Principal
// with chosen claims, and oauthtest.Server.WithPrincipal a request
// carrying one.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the Principal that Handler put in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// clone copies p for one request, its lists included: the cached Principal
// is shared by every request that sends the token, and a handler may
// change what it is given, elements of its lists too. Both lists share one
// allocation, each capped so an append cannot run into the other.
func (p *Principal) clone() *Principal {
	cp := *p
	// Empty lists too: one with spare capacity would let two requests'
	// appends write to one array.
	cp.Audience, cp.Scopes, cp.Roles = slices.Clip(p.Audience), slices.Clip(p.Scopes), slices.Clip(p.Roles)
	if n := len(p.Audience) + len(p.Scopes) + len(p.Roles); n > 0 {
		lists := make([]string, 0, n)
		lists = append(append(append(lists, p.Audience...), p.Scopes...), p.Roles...)
		na, ns := len(p.Audience), len(p.Scopes)
		cp.Audience = lists[:na:na]
		cp.Scopes = lists[na : na+ns : na+ns]
		cp.Roles = lists[na+ns:]
		// nil and empty stay apart, as the handler would otherwise see.
		if p.Audience == nil {
			cp.Audience = nil
		}
		if p.Scopes == nil {
			cp.Scopes = nil
		}
		if p.Roles == nil {
			cp.Roles = nil
		}
	}
	return &cp
}

// HasRole reports whether the token grants role (TokenShape.RoleClaims).
func (p *Principal) HasRole(role string) bool {
	return slices.Contains(p.Roles, role)
}

// mergeScopes is the union of a and b without duplicates, in order. It
// returns a or b itself when there is nothing to merge or drop, which is
// the common case.
func mergeScopes(a, b []string) []string {
	if len(b) == 0 && !hasDuplicates(a) {
		return a
	}
	if len(a) == 0 && !hasDuplicates(b) {
		return b
	}
	out := make([]string, 0, len(a)+len(b))
	seen := newStringSet(len(a) + len(b))
	for _, list := range [2][]string{a, b} {
		for _, s := range list {
			if seen.add(s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// hasDuplicates reports whether list has a string twice. Scope lists are
// short, and the quadratic scan is bounded all the same.
func hasDuplicates(list []string) bool {
	if len(list) > 32 {
		seen := newStringSet(len(list))
		for _, s := range list {
			if !seen.add(s) {
				return true
			}
		}
		return false
	}
	for i, s := range list {
		if slices.Contains(list[:i], s) {
			return true
		}
	}
	return false
}

// stringSet is a set of strings for one deduplication: open addressing
// over their hashes, several times faster than a map[string]bool for a
// token with a thousand scopes, in two allocations of 8 and 4 bytes a slot.
type stringSet struct {
	seed   maphash.Seed
	hashes []uint64 // 0: empty
	at     []int32  // index in strs of the slot's string
	strs   []string
	mask   uint64
}

func newStringSet(n int) stringSet {
	size := 8
	for size < 2*n {
		size *= 2
	}
	return stringSet{seed: maphash.MakeSeed(), hashes: make([]uint64, size), at: make([]int32, size), strs: make([]string, 0, n), mask: uint64(size - 1)}
}

// add adds s and reports whether it was new.
func (t *stringSet) add(s string) bool {
	h := maphash.String(t.seed, s) | 1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		switch t.hashes[i] {
		case 0:
			t.hashes[i], t.at[i] = h, int32(len(t.strs))
			t.strs = append(t.strs, s)
			return true
		case h:
			if t.strs[t.at[i]] == s {
				return false
			}
		}
	}
}
