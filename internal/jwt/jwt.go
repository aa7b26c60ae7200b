// Package jwt splits a JWS compact serialization (RFC 7515 §7.1) into its
// header, claims and signature and decodes them, without verifying
// anything. Verification and claim rules live with the caller.
package jwt

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrMalformed is wrapped by every error Parse returns.
var ErrMalformed = errors.New("malformed JWT")

// Header is the protected header members a resource server acts on.
type Header struct {
	Alg string
	Kid string
	Typ string
	// Crit is the crit member; HasCrit is true when the member is present,
	// even if empty (RFC 7515 §4.1.11 forbids an empty list).
	Crit    []string
	HasCrit bool
}

// Claims are the registered and access-token claims (RFC 7519 §4.1, RFC 9068 §2.2).
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	Expiry    time.Time // zero when absent
	NotBefore time.Time // zero when absent
	IssuedAt  time.Time // zero when absent
	HasExpiry bool
	ClientID  string
	Scope     []string // from "scope" (space-separated string or array)
	Scp       []string // from "scp" (array or space-separated string)
	ID        string
	// IDTokenMarkers is true when the claims carry nonce, at_hash or
	// c_hash, which only OpenID Connect ID tokens have.
	IDTokenMarkers bool
	// Confirmation is true when the claims carry cnf (RFC 7800): the token
	// is bound to a key (DPoP's jkt, mTLS's x5t#S256) and is worth nothing
	// without proof of possession of it.
	Confirmation bool
	// ConfirmationJSON is the cnf member's JSON when Confirmation is true,
	// a view of Token.Payload (valid while the Token is).
	ConfirmationJSON []byte
}

// Token is a parsed, unverified JWS.
type Token struct {
	Header Header
	Claims Claims
	// Payload is the decoded claims JSON, in a buffer that lives as long
	// as the Token; PayloadText is the same JSON as a string, of which
	// every claim string read is a substring (or, with escapes, a copy),
	// so a caller that keeps claims keeps PayloadText and nothing else.
	Payload     []byte
	PayloadText string
	// SigningInput is "header.payload" as sent; the signature covers it.
	SigningInput string
	Signature    []byte
}

// MaybeJWS reports whether s has the shape of a JWS compact serialization:
// exactly three non-empty dot-separated parts, the first starting like a
// base64url-encoded JSON object. A JWE has five parts and is not a JWS.
func MaybeJWS(s string) bool {
	i := strings.IndexByte(s, '.')
	if i <= 0 {
		return false
	}
	j := strings.IndexByte(s[i+1:], '.')
	if j <= 0 {
		return false
	}
	rest := s[i+1+j+1:]
	if rest == "" || strings.IndexByte(rest, '.') >= 0 {
		return false
	}
	// "ey" is how base64url of a JSON object starting with `{"` begins;
	// Parse too requires the header to start with '{'.
	return strings.HasPrefix(s, "ey")
}

// Parse splits and decodes s. It fails for anything that is not a JWS
// compact serialization with a JSON object header and payload.
func Parse(s string) (*Token, error) {
	t := new(Token)
	if err := t.Decode(s); err != nil {
		return nil, err
	}
	return t, nil
}

// Decode is Parse into t, for a caller that keeps the Token on its stack.
// On error t holds nothing of use.
//
// The three parts are decoded into one buffer; the payload is copied once
// more, into PayloadText, whose substrings the claim strings are: a token
// costs two allocations for its bytes, whatever the number of members
// read, and what a caller keeps of the claims keeps the payload alive,
// never the header or the signature. Header strings are copies.
func (t *Token) Decode(s string) error {
	*t = Token{}
	h, rest, ok := strings.Cut(s, ".")
	if !ok {
		return fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 {
		return fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	if h == "" || p == "" || sig == "" {
		return fmt.Errorf("%w: empty part", ErrMalformed)
	}
	buf := make([]byte, decodedLen(len(h))+decodedLen(len(p))+decodedLen(len(sig)))
	hb, err := decodeInto(buf, h)
	if err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	buf = buf[len(hb):]
	t.SigningInput = s[:len(h)+1+len(p)]
	if err := t.parseHeader(hb); err != nil {
		return err
	}
	if t.Payload, err = decodeInto(buf, p); err != nil {
		return fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	t.PayloadText = string(t.Payload)
	buf = buf[len(t.Payload):]
	if t.Signature, err = decodeInto(buf, sig); err != nil {
		return fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	return t.parseClaims()
}

// parseHeader and parseClaims read the JSON with the scanner in scan.go,
// which says where it is stricter than encoding/json.

func (t *Token) parseHeader(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		// MaybeJWS classifies by this first byte; Parse agrees with it.
		return fmt.Errorf("%w: header does not start with '{'", ErrMalformed)
	}
	var m [nHeaderMembers]span
	if err := scanObject(b, headerObject, m[:]); err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	h := &t.Header
	alg, err := stringMember(b, "", m[hAlg], "alg", true)
	if err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if alg == "" {
		return fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	h.Alg = alg
	if h.Kid, err = stringMember(b, "", m[hKid], "kid", false); err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if h.Typ, err = stringMember(b, "", m[hTyp], "typ", true); err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if m[hCrit].present() {
		h.HasCrit = true
		if h.Crit, err = listMember(b, "", m[hCrit], listOnly); err != nil {
			if errors.Is(err, errBadUnicode) {
				return fmt.Errorf("%w: header crit: %w", ErrMalformed, err)
			}
			return fmt.Errorf("%w: header crit is not a list of strings", ErrMalformed)
		}
	}
	return nil
}

func (t *Token) parseClaims() error {
	b, src := t.Payload, t.PayloadText
	var m [nClaimMembers]span
	if err := scanObject(b, claimsObject, m[:]); err != nil {
		return fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	cl := &t.Claims
	var err error
	// One call each rather than a loop over pointers to the fields, which
	// would move the Token to the heap.
	if cl.Issuer, err = stringMember(b, src, m[cIss], "iss", false); err != nil {
		return fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	if cl.Subject, err = stringMember(b, src, m[cSub], "sub", false); err != nil {
		return fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	if cl.ClientID, err = stringMember(b, src, m[cClientID], "client_id", false); err != nil {
		return fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	if cl.ID, err = stringMember(b, src, m[cJti], "jti", false); err != nil {
		return fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	// Present, even as null: only OpenID Connect ID tokens have these.
	cl.IDTokenMarkers = m[cNonce].present() || m[cAtHash].present() || m[cCHash].present()
	cl.Confirmation = m[cCnf].present() && string(b[m[cCnf].start:m[cCnf].end]) != "null"
	if cl.Confirmation {
		cl.ConfirmationJSON = b[m[cCnf].start:m[cCnf].end]
	}
	if cl.Audience, err = listMember(b, src, m[cAud], stringIsOne); err != nil {
		return fmt.Errorf("%w: aud: %w", ErrMalformed, err)
	}
	if cl.Scope, err = listMember(b, src, m[cScope], stringIsSplit); err != nil {
		return fmt.Errorf("%w: scope: %w", ErrMalformed, err)
	}
	if cl.Scp, err = listMember(b, src, m[cScp], stringIsSplit); err != nil {
		return fmt.Errorf("%w: scp: %w", ErrMalformed, err)
	}
	if cl.Expiry, cl.HasExpiry, err = dateMember(b, m[cExp]); err != nil {
		return fmt.Errorf("%w: exp: %w", ErrMalformed, err)
	}
	if cl.NotBefore, _, err = dateMember(b, m[cNbf]); err != nil {
		return fmt.Errorf("%w: nbf: %w", ErrMalformed, err)
	}
	if cl.IssuedAt, _, err = dateMember(b, m[cIat]); err != nil {
		return fmt.Errorf("%w: iat: %w", ErrMalformed, err)
	}
	return nil
}

// PeekIssuer returns the iss claim of a JWS-shaped s that Decode refused,
// read leniently (encoding/json, exact member name), or "" when s has no
// readable payload object or no string iss. It is only for deciding which
// issuer, if any, may be asked about a token that cannot be judged
// locally: nothing read here is trusted.
func PeekIssuer(s string) string {
	_, rest, ok := strings.Cut(s, ".")
	if !ok {
		return ""
	}
	payload, _, ok := strings.Cut(rest, ".")
	if !ok || len(payload) > 64<<10 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	var iss string
	if json.Unmarshal(m["iss"], &iss) != nil {
		return ""
	}
	return iss
}

// LooksLikeJWS reports whether s is recognisably a JWS compact
// serialization that MaybeJWS does not take: exactly three dot-separated
// parts, the first of which is base64url of a JSON object with an alg
// member, whatever the rest holds. That covers unsecured JWTs
// ("header.payload.", alg none) and headers with leading whitespace. It
// also returns the alg when it is a string. Such a token is judged (and
// refused) locally, never sent to an introspection endpoint.
func LooksLikeJWS(s string) (alg string, ok bool) {
	header, rest, found := strings.Cut(s, ".")
	if !found || header == "" || len(header) > 4<<10 || strings.Count(rest, ".") != 1 {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return "", false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return "", false
	}
	raw, ok := m["alg"]
	if !ok {
		return "", false
	}
	_ = json.Unmarshal(raw, &alg)
	return alg, true
}
