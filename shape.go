package tokenguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// TokenShape says where an issuer's tokens carry what the guard reads,
// for servers whose access tokens do not follow RFC 9068. Its zero value
// is RFC 9068: aud, sub, client_id, scope and scp, and no ID-token claims.
// Every field opts one issuer in to one server's habit; none relaxes a
// check of another issuer. README's "Works with" table gives the shape of
// each common server.
type TokenShape struct {
	// AllowIDTokenClaims accepts access tokens that carry nonce, at_hash or
	// c_hash, which are otherwise refused as ID tokens: Dex and Keycloak up
	// to 24 build access tokens that way. The audience check must be on
	// for the issuer (New refuses InsecureSkipAudienceCheck with it), so an
	// ID token issued to another client still fails on its aud; a payload
	// typ of "ID" (Keycloak's ID tokens) is still refused. An ID token
	// issued to a client whose id is the configured audience does pass:
	// give the API an audience of its own (Dex: cross-client
	// "audience:server:client_id:<api>" scope; Keycloak: an audience
	// mapper).
	AllowIDTokenClaims bool
	// AudienceClaim names the claim that holds the audience when a token
	// carries no aud: Amazon Cognito's access tokens have the app client
	// in "client_id" and no aud. The claim is one identifier (a string,
	// never split) or an array of them. A token with aud, even an empty
	// one, is checked on aud.
	AudienceClaim string
	// TokenUse, when set, is the value a JWT's token_use claim must have:
	// "access" for Amazon Cognito, whose ID tokens say "id". (Introspection
	// answers have their own rule: a token_use other than access_token is
	// refused.)
	TokenUse string
	// ScopeClaims are the claims Principal.Scopes is read from, in place of
	// scope and scp (and of Config.ScopeClaim): "permissions" beside
	// "scope" for Auth0, "scp" for Okta and Entra ID. Each is a claim name
	// (tried first, so Auth0's URL-named claims work as they are), or when
	// no claim has that name, a path of names separated by dots
	// ("realm_access.roles"; write a dot inside a name as "\."). A claim
	// may be a space-separated string or an array of strings.
	ScopeClaims []string
	// RoleClaims are the claims Principal.Roles is read from, as
	// ScopeClaims: "roles" for Entra ID, "realm_access.roles" and
	// "resource_access.<client>.roles" for Keycloak. The zero value reads
	// no roles.
	RoleClaims []string
	// ClientIDClaim names the claim Principal.ClientID is read from when a
	// token has no client_id: "cid" for Okta, "azp" for Keycloak and Dex.
	ClientIDClaim string
	// ClientAsSubject makes a token without sub (a client-credentials
	// token of Authelia or panva's oidc-provider) have its client id as
	// Principal.Subject, with Principal.SubjectIsClient set, so code that
	// keys on the subject does not see "". Without it such a token has an
	// empty Subject.
	ClientAsSubject bool
}

// needsClaims reports whether the shape reads claims the scanner does not.
func (s *TokenShape) needsClaims() bool {
	return s.AllowIDTokenClaims || s.AudienceClaim != "" || s.TokenUse != "" || len(s.ScopeClaims) > 0 || len(s.RoleClaims) > 0 || s.ClientIDClaim != ""
}

// check refuses a shape that would relax a check New cannot see through.
func (s *TokenShape) check(id string, skipAudience bool) error {
	if s.AllowIDTokenClaims && skipAudience {
		return fmt.Errorf("tokenguard: issuer %s: AllowIDTokenClaims needs the audience check: an ID token of another client must fail on its aud", id)
	}
	for _, list := range [][]string{s.ScopeClaims, s.RoleClaims} {
		for _, c := range list {
			if c == "" || strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".") {
				return fmt.Errorf("tokenguard: issuer %s: claim path %q is empty or has an empty name", id, c)
			}
		}
	}
	return nil
}

// claimSet is a token's claims, decoded once for the shape's readers.
type claimSet map[string]json.RawMessage

func decodeClaims(b []byte) (claimSet, error) {
	var m claimSet
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// at returns the claim named path, or when there is none the value at the
// dotted path.
func (m claimSet) at(path string) (json.RawMessage, bool) {
	if v, ok := m[path]; ok {
		return v, true
	}
	cur := m
	names := splitPath(path)
	for i, name := range names {
		v, ok := cur[name]
		if !ok {
			return nil, false
		}
		if i == len(names)-1 {
			return v, true
		}
		var next map[string]json.RawMessage
		if json.Unmarshal(v, &next) != nil {
			return nil, false
		}
		cur = next
	}
	return nil, false
}

// splitPath splits a claim path on dots; "\\." is a dot inside a name
// (a Keycloak client id such as "orders.api").
func splitPath(path string) []string {
	var names []string
	var cur strings.Builder
	for i := 0; i < len(path); i++ {
		switch {
		case path[i] == '\\' && i+1 < len(path) && path[i+1] == '.':
			cur.WriteByte('.')
			i++
		case path[i] == '.':
			names = append(names, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(path[i])
		}
	}
	return append(names, cur.String())
}

// strings reads the values at each path: a space-separated string or an
// array of strings (other values give none), merged without duplicates.
func (m claimSet) strings(paths []string) []string {
	var out []string
	for _, p := range paths {
		if raw, ok := m.at(p); ok {
			out = mergeScopes(out, claimStrings(raw))
		}
	}
	return out
}

// claimStrings reads a claim of scope-like values: a space-separated
// string or an array of strings, without empty ones or duplicates;
// anything else gives none.
func claimStrings(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return mergeScopes(strings.FieldsFunc(one, func(r rune) bool { return r == ' ' }), nil)
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return mergeScopes(slices.DeleteFunc(list, func(s string) bool { return s == "" }), nil)
	}
	return nil
}

// values reads the value at path as identifiers: a string is one (never
// split), an array of strings is several; anything else is none.
func (m claimSet) values(path string) []string {
	raw, ok := m.at(path)
	if !ok {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		if one == "" {
			return nil
		}
		return []string{one}
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return slices.DeleteFunc(list, func(s string) bool { return s == "" })
	}
	return nil
}

// str reads a string claim; "" when absent or not a string.
func (m claimSet) str(name string) string {
	var s string
	if raw, ok := m[name]; ok && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return ""
}

// applyShape fills in what the issuer's shape says lives elsewhere, and
// checks what it says must hold. claims is the token's claims JSON.
func (iss *issuer) applyShape(p *Principal, claims []byte, jwt bool) *Error {
	sh := &iss.shape
	if sh.needsClaims() {
		m, err := decodeClaims(claims)
		if err != nil {
			return errInvalidToken("malformed token", fmt.Errorf("claims: %w", err))
		}
		if jwt && sh.TokenUse != "" {
			if got := m.str("token_use"); got != sh.TokenUse {
				return errInvalidToken("token type not accepted", errors.New("token_use "+quote(got)+" is not "+quote(sh.TokenUse)))
			}
		}
		if jwt && sh.AllowIDTokenClaims && m.str("typ") == "ID" {
			// Keycloak marks its ID tokens so in the payload: those are
			// never access tokens, whatever else they carry.
			return errInvalidToken("token type not accepted", errors.New(`an ID token (typ claim "ID")`))
		}
		if p.Audience == nil && sh.AudienceClaim != "" {
			// Absent (or null), not empty: aud [] names no audience. An
			// audience is one identifier, never a space-separated list.
			p.Audience = m.values(sh.AudienceClaim)
		}
		if len(sh.ScopeClaims) > 0 {
			p.Scopes = m.strings(sh.ScopeClaims)
		}
		if len(sh.RoleClaims) > 0 {
			p.Roles = m.strings(sh.RoleClaims)
		}
		if p.ClientID == "" && sh.ClientIDClaim != "" {
			p.ClientID = m.str(sh.ClientIDClaim)
		}
	}
	if sh.ClientAsSubject && p.Subject == "" && p.ClientID != "" {
		p.Subject, p.SubjectIsClient = p.ClientID, true
	}
	return nil
}
