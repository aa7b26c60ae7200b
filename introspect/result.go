package introspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/tokenguard/tokenguard/internal/jwt"
)

// Result is a validated introspection response (RFC 7662 §2.2).
type Result struct {
	// Active is the server's verdict. When false, the other fields are
	// empty: the server owes no details about an inactive token.
	Active bool
	// Scope is the scope member split on spaces; nil when absent or empty.
	Scope     []string
	ClientID  string // client_id
	Username  string // username
	TokenType string // token_type
	// TokenUse is the token_use member some servers (Ory Hydra, fosite)
	// send to say which kind of token this is; "" when absent.
	TokenUse string
	Subject  string // sub
	Issuer   string // iss
	TokenID  string // jti
	// Audience is the aud member, a string or an array of strings; nil when
	// absent.
	Audience []string
	// Confirmation is the cnf member (RFC 7800: the key the token is bound
	// to, as DPoP's jkt or mTLS's x5t#S256), verbatim; nil when absent or
	// null.
	Confirmation json.RawMessage
	// Expiry, IssuedAt and NotBefore are exp, iat and nbf; zero when absent.
	Expiry    time.Time
	IssuedAt  time.Time
	NotBefore time.Time
	// Raw is the whole response object (for a JWT response, its
	// token_introspection claim), so the caller can read members this
	// type does not name.
	Raw json.RawMessage
}

// result parses a response object and validates an active one.
func (c *Client) result(body []byte) (*Result, error) {
	r, err := parseResult(body)
	if err != nil {
		return nil, &UpstreamError{StatusCode: 200, Err: fmt.Errorf("%w: %w", ErrBadResponse, err)}
	}
	if !r.Active {
		return r, nil
	}
	if err := c.validate(r); err != nil {
		return nil, err
	}
	return r, nil
}

// parseResult reads the members by their exact names: encoding/json would
// match struct fields case-insensitively and let "ACTIVE" stand in for
// "active".
func parseResult(body []byte) (*Result, error) {
	m, err := members(body)
	if err != nil {
		return nil, err
	}
	// Member names equal under case folding, at any depth, would read one
	// way here and in ClaimIs and another to encoding/json in
	// Principal.Claims ("workſpace" fills `json:"workspace"`).
	if err := jwt.CheckObject(body); err != nil {
		return nil, err
	}
	// Raw is what Principal.Claims decodes: an answer encoding/json cannot
	// decode (a number beyond float64, say 1e700) is malformed, not a
	// Principal whose claims fail later.
	var whole any
	if err := json.Unmarshal(body, &whole); err != nil {
		return nil, fmt.Errorf("not decodable: %w", err)
	}
	raw, ok := m["active"]
	if !ok {
		return nil, errors.New("active member missing")
	}
	var active any
	if err := json.Unmarshal(raw, &active); err != nil {
		return nil, errors.New("active is not valid JSON")
	}
	b, ok := active.(bool)
	if !ok {
		return nil, errors.New("active is not a JSON boolean")
	}
	r := &Result{Active: b, Raw: json.RawMessage(bytes.TrimSpace(body))}
	if !b {
		return r, nil
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"client_id", &r.ClientID}, {"username", &r.Username}, {"token_type", &r.TokenType}, {"token_use", &r.TokenUse},
		{"sub", &r.Subject}, {"iss", &r.Issuer}, {"jti", &r.TokenID},
	} {
		if *f.dst, err = str(m, f.name); err != nil {
			return nil, err
		}
	}
	scope, err := str(m, "scope")
	if err != nil {
		return nil, err
	}
	if f := strings.FieldsFunc(scope, func(r rune) bool { return r == ' ' }); len(f) > 0 {
		r.Scope = f
	}
	if r.Audience, err = audience(m["aud"]); err != nil {
		return nil, err
	}
	if cnf, ok := m["cnf"]; ok && string(cnf) != "null" {
		r.Confirmation = cnf
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"exp", &r.Expiry}, {"iat", &r.IssuedAt}, {"nbf", &r.NotBefore}} {
		if *f.dst, err = numericDate(m[f.name]); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return r, nil
}

// validate applies the rules for an active token.
func (c *Client) validate(r *Result) error {
	now := c.now()
	if strings.EqualFold(r.TokenType, "refresh_token") {
		return &TokenError{Reason: "refresh token not accepted", Detail: "token_type " + quote(r.TokenType)}
	}
	// token_type is the OAuth token type (Bearer, DPoP): servers that say
	// which kind of token this is (Ory Hydra and fosite answer a refresh
	// token with token_type bearer) say it in token_use.
	if r.TokenUse != "" && r.TokenUse != "access_token" {
		return &TokenError{Reason: "not an access token", Detail: "token_use " + quote(r.TokenUse)}
	}
	if !r.Expiry.IsZero() && !now.Before(r.Expiry.Add(c.leeway)) {
		return &TokenError{Reason: "token expired", Detail: "exp " + r.Expiry.UTC().Format(time.RFC3339)}
	}
	if !r.NotBefore.IsZero() && now.Add(c.leeway).Before(r.NotBefore) {
		return &TokenError{Reason: "token not yet valid", Detail: "nbf " + r.NotBefore.UTC().Format(time.RFC3339)}
	}
	if r.Issuer != "" && len(c.issuers) > 0 && !slices.Contains(c.issuers, r.Issuer) {
		return &TokenError{Reason: "untrusted issuer", Detail: "iss " + quote(r.Issuer)}
	}
	if c.needAud && len(r.Audience) == 0 {
		return &TokenError{Reason: "token not meant for this resource", Detail: "the answer has no aud"}
	}
	if len(c.audiences) > 0 && r.Audience != nil && !slices.ContainsFunc(r.Audience, func(a string) bool { return slices.Contains(c.audiences, a) }) {
		return &TokenError{Reason: "token not meant for this resource", Detail: "aud " + quote(strings.Join(r.Audience, " ")) + " lacks " + quote(strings.Join(c.audiences, " or "))}
	}
	return nil
}

// members decodes a JSON object into its members keyed by exact name. It
// rejects anything but one object, trailing data and duplicate names (which
// parsers resolve differently).
func members(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	m := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("not JSON: object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("duplicate member %s", quote(name))
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return m, nil
}

// str reads an optional string member; null counts as absent.
func str(m map[string]json.RawMessage, name string) (string, error) {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return v, nil
}

// audience reads aud: a string or an array of strings; null or absent is nil.
func audience(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil || list == nil {
		return nil, errors.New("aud is neither a string nor an array of strings")
	}
	return list, nil
}

// numericDate reads a JSON number of seconds since the epoch, possibly
// fractional (RFC 7519 §2); null or absent is the zero time.
func numericDate(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var f float64
	if raw[0] == '"' || json.Unmarshal(raw, &f) != nil {
		return time.Time{}, errors.New("not a JSON number")
	}
	// Keep far-future and far-past values representable instead of wrapping.
	if math.IsNaN(f) || f > 1e15 || f < -1e15 {
		return time.Time{}, errors.New("out of range")
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}
