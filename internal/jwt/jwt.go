// Package jwt splits a JWS compact serialization (RFC 7515 §7.1) into its
// header, claims and signature and decodes them, without verifying
// anything. Verification and claim rules live with the caller.
package jwt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
}

// Token is a parsed, unverified JWS.
type Token struct {
	Header  Header
	Claims  Claims
	Payload []byte // the decoded claims JSON
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
	h, rest, ok := strings.Cut(s, ".")
	if !ok {
		return nil, fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 {
		return nil, fmt.Errorf("%w: not three parts", ErrMalformed)
	}
	if h == "" || p == "" || sig == "" {
		return nil, fmt.Errorf("%w: empty part", ErrMalformed)
	}
	hb, err := decode(h)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	t := &Token{SigningInput: s[:len(h)+1+len(p)]}
	if err := t.parseHeader(hb); err != nil {
		return nil, err
	}
	if t.Payload, err = decode(p); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	if t.Signature, err = decode(sig); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	if err := t.parseClaims(); err != nil {
		return nil, err
	}
	return t, nil
}

// decode is strict base64url without padding (RFC 7515 §2). The alphabet
// is checked first because encoding/base64 skips CR and LF even in strict
// mode, which would give one token several accepted spellings.
func decode(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("byte %d is not base64url", i)
		}
	}
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

// members decodes a JSON object into its members, keyed by their exact
// names. JOSE names are case-sensitive (RFC 7515 §4, RFC 7519 §4), while
// encoding/json matches struct fields case-insensitively: decoding straight
// into a struct would let "ISS" stand in for "iss".
func members(b []byte) (map[string]json.RawMessage, error) {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// str reads an optional string member; null counts as absent.
func str(m map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false, fmt.Errorf("%s is not a string", name)
	}
	return v, true, nil
}

func (t *Token) parseHeader(b []byte) error {
	if len(b) == 0 || b[0] != '{' {
		// MaybeJWS classifies by this first byte; Parse agrees with it.
		return fmt.Errorf("%w: header does not start with '{'", ErrMalformed)
	}
	m, err := members(b)
	if err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	h := &t.Header
	alg, _, err := str(m, "alg")
	if err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if alg == "" {
		return fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	h.Alg = alg
	if h.Kid, _, err = str(m, "kid"); err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if h.Typ, _, err = str(m, "typ"); err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if raw, ok := m["crit"]; ok {
		h.HasCrit = true
		if err := json.Unmarshal(raw, &h.Crit); err != nil {
			return fmt.Errorf("%w: header crit is not a list of strings", ErrMalformed)
		}
	}
	return nil
}

func (t *Token) parseClaims() error {
	m, err := members(t.Payload)
	if err != nil {
		return fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	cl := &t.Claims
	for _, f := range []struct {
		name string
		dst  *string
	}{{"iss", &cl.Issuer}, {"sub", &cl.Subject}, {"client_id", &cl.ClientID}, {"jti", &cl.ID}} {
		if *f.dst, _, err = str(m, f.name); err != nil {
			return fmt.Errorf("%w: claims: %w", ErrMalformed, err)
		}
	}
	_, nonce := m["nonce"]
	_, atHash := m["at_hash"]
	_, cHash := m["c_hash"]
	cl.IDTokenMarkers = nonce || atHash || cHash
	if cl.Audience, err = stringOrList(m["aud"], false); err != nil {
		return fmt.Errorf("%w: aud: %w", ErrMalformed, err)
	}
	if cl.Scope, err = stringOrList(m["scope"], true); err != nil {
		return fmt.Errorf("%w: scope: %w", ErrMalformed, err)
	}
	if cl.Scp, err = stringOrList(m["scp"], true); err != nil {
		return fmt.Errorf("%w: scp: %w", ErrMalformed, err)
	}
	if cl.Expiry, cl.HasExpiry, err = numericDate(m["exp"]); err != nil {
		return fmt.Errorf("%w: exp: %w", ErrMalformed, err)
	}
	if cl.NotBefore, _, err = numericDate(m["nbf"]); err != nil {
		return fmt.Errorf("%w: nbf: %w", ErrMalformed, err)
	}
	if cl.IssuedAt, _, err = numericDate(m["iat"]); err != nil {
		return fmt.Errorf("%w: iat: %w", ErrMalformed, err)
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// stringOrList reads a string or an array of strings; null or absent is nil.
// With split, a string is a list separated by SP (RFC 6749 §3.3 scopes).
func stringOrList(raw json.RawMessage, split bool) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		if split {
			// RFC 6749 §3.3: scope-tokens are separated by SP only. Splitting
			// on other (Unicode) white space would turn one scope the server
			// issued, "repo:x\u00a0admin", into two, one of them "admin".
			return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), nil
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("neither a string nor a list of strings")
	}
	return list, nil
}

// numericDate reads a NumericDate (RFC 7519 §2): a JSON number of seconds,
// possibly fractional.
func numericDate(raw json.RawMessage) (time.Time, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return time.Time{}, false, errors.New("not a number")
	}
	// Keep far-future and far-past values representable instead of wrapping.
	if math.IsNaN(f) || f > 1e15 || f < -1e15 {
		return time.Time{}, false, errors.New("out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}
