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
	// "eyJ" is base64url of `{"`; allow whitespace before the brace too.
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

// decode is strict base64url without padding (RFC 7515 §2): padding, the
// standard alphabet and non-canonical trailing bits are all rejected.
func decode(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(s)
}

func (t *Token) parseHeader(b []byte) error {
	var h struct {
		Alg  *string         `json:"alg"`
		Kid  *string         `json:"kid"`
		Typ  *string         `json:"typ"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := unmarshalObject(b, &h); err != nil {
		return fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if h.Alg == nil || *h.Alg == "" {
		return fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	t.Header.Alg = *h.Alg
	if h.Kid != nil {
		t.Header.Kid = *h.Kid
	}
	if h.Typ != nil {
		t.Header.Typ = *h.Typ
	}
	if h.Crit != nil {
		t.Header.HasCrit = true
		if err := json.Unmarshal(h.Crit, &t.Header.Crit); err != nil {
			return fmt.Errorf("%w: header crit is not a list of strings", ErrMalformed)
		}
	}
	return nil
}

func (t *Token) parseClaims() error {
	var c struct {
		Iss      *string         `json:"iss"`
		Sub      *string         `json:"sub"`
		Aud      json.RawMessage `json:"aud"`
		Exp      json.RawMessage `json:"exp"`
		Nbf      json.RawMessage `json:"nbf"`
		Iat      json.RawMessage `json:"iat"`
		ClientID *string         `json:"client_id"`
		Scope    json.RawMessage `json:"scope"`
		Scp      json.RawMessage `json:"scp"`
		Jti      *string         `json:"jti"`
	}
	if err := unmarshalObject(t.Payload, &c); err != nil {
		return fmt.Errorf("%w: claims: %w", ErrMalformed, err)
	}
	cl := &t.Claims
	cl.Issuer = deref(c.Iss)
	cl.Subject = deref(c.Sub)
	cl.ClientID = deref(c.ClientID)
	cl.ID = deref(c.Jti)
	var err error
	if cl.Audience, err = stringOrList(c.Aud, false); err != nil {
		return fmt.Errorf("%w: aud: %w", ErrMalformed, err)
	}
	if cl.Scope, err = stringOrList(c.Scope, true); err != nil {
		return fmt.Errorf("%w: scope: %w", ErrMalformed, err)
	}
	if cl.Scp, err = stringOrList(c.Scp, true); err != nil {
		return fmt.Errorf("%w: scp: %w", ErrMalformed, err)
	}
	if cl.Expiry, cl.HasExpiry, err = numericDate(c.Exp); err != nil {
		return fmt.Errorf("%w: exp: %w", ErrMalformed, err)
	}
	if cl.NotBefore, _, err = numericDate(c.Nbf); err != nil {
		return fmt.Errorf("%w: nbf: %w", ErrMalformed, err)
	}
	if cl.IssuedAt, _, err = numericDate(c.Iat); err != nil {
		return fmt.Errorf("%w: iat: %w", ErrMalformed, err)
	}
	return nil
}

// unmarshalObject decodes exactly one JSON object with nothing after it.
func unmarshalObject(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	return json.Unmarshal(b, v)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// stringOrList reads a string or an array of strings; null or absent is nil.
// With split, a string is a space-separated list (RFC 6749 §3.3 scopes).
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
			return strings.Fields(s), nil
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
