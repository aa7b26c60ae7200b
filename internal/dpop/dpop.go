// Package dpop verifies DPoP proofs (RFC 9449 §4.3) for a resource
// server: one proof, the request it came with and the access token
// presented beside it. It decides whether the proof is valid and returns
// what the caller needs for the checks that are not local to the proof:
// the key's thumbprint (to compare with the token's cnf.jkt), the jti (for
// a replay store) and how long to remember it.
//
// What is left to the caller, because it needs state, the token or the
// HTTP exchange:
//
//   - refusing a request with more than one DPoP header (§4.3 check 1) and
//     passing the one header's value;
//   - comparing Proof.Thumbprint with the token's cnf.jkt (§4.3 check 12,
//     §6): a mismatch is error="invalid_token" (§7.1, Figure 16);
//   - the replay store (§11.1): refuse a Proof.ID already seen for the same
//     Proof.Thumbprint, remembering it until Proof.Expires;
//   - issuing nonces (§9): Options.Nonce decides whether one is current,
//     and on ErrUseNonce the caller answers 401 with a fresh DPoP-Nonce;
//   - the challenge (§7.1): WWW-Authenticate: DPoP error=Code(err),
//     algs=Options.AcceptedAlgorithms(), without the error's text beyond a
//     short description.
//
// The proof is parsed with internal/jwt (the strict scanner: no duplicate
// or case-folded member names at any depth, bounded nesting, strict
// base64url), its key is read with jwks (jwx, with that package's refusals
// of weak keys), and the signature is checked with internal/jws.
package dpop

import (
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	lru "github.com/hashicorp/golang-lru/v2"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenguard/tokenguard/internal/jws"
	"github.com/tokenguard/tokenguard/internal/jwt"
	"github.com/tokenguard/tokenguard/jwks"
)

// Size bounds. A proof carries its key: an RSA key of jws.MaxRSABits
// (8192) bits is about 1.4 KiB of JWK and its signature as much again, so
// these bounds admit every key internal/jws accepts.
const (
	// MaxProofSize is the longest proof accepted, in bytes.
	MaxProofSize = 8 << 10
	// MaxJWKSize is the longest jwk header member accepted, in bytes of
	// its JSON text.
	MaxJWKSize = 2 << 10
	// MaxIDSize is the longest jti accepted, in bytes.
	MaxIDSize = 256
)

// Defaults of Options.
const (
	// DefaultWindow is how old a proof's iat may be when Options.Window is zero.
	DefaultWindow = 5 * time.Minute
	// DefaultSkew is how far in the future a proof's iat may be when
	// Options.Skew is zero.
	DefaultSkew = 10 * time.Second
)

// Options says what a proof must match. Method, URL and AccessToken
// describe the one request the proof came with; the rest is policy that
// is usually the same for every request.
type Options struct {
	// Algorithms lists the signature algorithms a proof may use. Only the
	// asymmetric algorithms internal/jws verifies (jws.Algorithms) can be
	// accepted; any other entry, such as HS256 or none, is ignored (a list
	// of only such entries accepts nothing). This defaults to
	// jws.Algorithms when nil or empty.
	Algorithms []string

	// Method is the request's method; the proof's htm must equal it
	// exactly (RFC 9110 §9.1: methods are case-sensitive). Required.
	Method string

	// URL is the request's target URI as the client reached the server:
	// scheme://host[:port]/path, built by the caller from what it knows of
	// its external scheme and host (behind a proxy, not necessarily what
	// net/http sees) and the path as the client sent it
	// (r.URL.EscapedPath()). A query or fragment is ignored. The proof's
	// htu must equal it after both are normalised (see normalizeHTU). Required.
	URL string

	// AccessToken is the access token presented with the proof. When it is
	// set, the proof's ath must be present and equal to base64url(SHA-256(
	// AccessToken)) (RFC 9449 §4.3 check 12). When it is empty, the proof
	// is taken as presented without a token and must not have an ath: a
	// proof made for a token is not used where no token is presented. A
	// resource server always sets it.
	AccessToken string

	// Now is the time the proof is judged at. This defaults to time.Now().
	Now time.Time

	// Window is how old a proof may be: its iat must not be before
	// Now-Window. This defaults to DefaultWindow (5 minutes) when zero; a
	// negative Window is an error (ErrOptions). The replay store must
	// remember a proof's jti at least this long (Proof.Expires).
	Window time.Duration

	// Skew is how far in the future a proof's iat may be, for clients
	// whose clocks run ahead: its iat must not be after Now+Skew. A proof
	// from further ahead is refused (it would stay valid longer than
	// Window). This defaults to DefaultSkew (10 seconds) when zero; a
	// negative Skew allows none.
	Skew time.Duration

	// Nonce, when set, makes the nonce claim required (RFC 9449 §8): a
	// proof without one fails with ErrNonceMissing, and one for which
	// Nonce returns false fails with ErrNonceRejected; both are
	// use_dpop_nonce, and the caller answers with a fresh nonce in the
	// DPoP-Nonce header. It is called only for a proof that passed every
	// other check, with a non-empty nonce of NQCHARs (§8.1). When nil, a
	// nonce claim is not required and, if present, only returned.
	Nonce func(nonce string) bool

	// Keys, when set, remembers the keys proofs carried, so that a
	// client's next proof with the same jwk is not parsed and checked
	// again (for RSA and Ed25519 keys that costs more than the
	// signature). Nil parses every jwk.
	Keys *KeyCache
}

// Proof is what a valid proof tells the caller.
type Proof struct {
	// Thumbprint is the RFC 7638 SHA-256 JWK thumbprint of the proof's key,
	// base64url without padding: compare it with the access token's
	// cnf.jkt (RFC 9449 §6.1).
	Thumbprint string
	// ID is the proof's jti (at most MaxIDSize bytes), for the replay
	// store. The client chooses it: key the store by a hash of it, scoped
	// by Thumbprint (so one client cannot spend another's jti).
	ID string
	// IssuedAt is the proof's iat.
	IssuedAt time.Time
	// Expires is when the proof becomes too old for Verify with the same
	// Window (IssuedAt + Window): the replay store must remember ID at
	// least until then (plus any clock difference across a fleet).
	Expires time.Time
	// Nonce is the proof's nonce claim; empty when it has none.
	Nonce string
	// Algorithm is the proof's alg.
	Algorithm string
}

// Verify checks proof, the value of the request's single DPoP header,
// against o, and returns what it proves. Every error wraps exactly one of
// ErrInvalidProof (invalid_dpop_proof), ErrUseNonce (use_dpop_nonce) or
// ErrOptions (the caller's mistake); Code maps an error to the RFC's code.
// Error messages name what failed and never hold the proof or the token.
//
// Where RFC 9449 leaves a choice, Verify is strict: typ is compared as the
// media type it is (case-insensitively, "application/" optional); a crit
// header, and jku, x5u or x5c beside the jwk, are refused; the jwk must be
// canonically encoded (so its thumbprint has one spelling); ath is
// required with an access token and refused without one; iat must lie in
// [Now-Window, Now+Skew]; jti is at most MaxIDSize bytes; the nonce is
// checked last, after the signature.
func Verify(proof string, o Options) (*Proof, error) {
	algs, window, skew, now, err := o.resolve()
	if err != nil {
		return nil, err
	}
	wantURL, err := normalizeHTU(o.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: URL: %w", ErrOptions, err)
	}

	// The proof's shape: exactly one JWS compact serialization (RFC 9449
	// §4.3 check 2), read by the strict parser.
	if len(proof) > MaxProofSize {
		return nil, invalid("proof of %d bytes, over %d", len(proof), MaxProofSize)
	}
	if n := strings.Count(proof, "."); n != 2 {
		// A JWE compact serialization has five parts (four dots).
		return nil, invalid("not a JWS compact serialization (%d parts, not 3)", n+1)
	}
	var t jwt.Token
	if err := t.Decode(proof); err != nil {
		return nil, invalid("%v", err)
	}
	header, claims, err := members(&t)
	if err != nil {
		return nil, err
	}

	// The header (checks 4, 5, 7).
	h := &t.Header
	if !typIsDPoP(h.Typ) {
		return nil, invalid("typ %s is not dpop+jwt", quote(h.Typ))
	}
	if !jws.Supported(h.Alg) || !slices.Contains(algs, h.Alg) {
		return nil, invalid("alg %s is not allowed", quote(h.Alg))
	}
	if h.HasCrit {
		// No extension is understood here (RFC 7515 §4.1.11).
		return nil, invalid("crit header parameter %q not understood", h.Crit)
	}
	for _, name := range []string{"jku", "x5u", "x5c"} {
		if _, ok := header[name]; ok {
			// The key is the jwk and nothing else: a proof that also names
			// or carries another key means two things to two verifiers.
			return nil, invalid("header parameter %s is not allowed: the key is the jwk", name)
		}
	}
	rawJWK, ok := header["jwk"]
	if !ok || string(rawJWK) == "null" {
		return nil, invalid("no jwk header parameter")
	}
	key, thumbprint, err := o.Keys.publicKey(rawJWK, h.Alg)
	if err != nil {
		return nil, err
	}

	// The claims (check 3 and 8 to 12), before the signature: they cost
	// nothing, the signature up to milliseconds.
	c := &t.Claims
	if c.ID == "" {
		return nil, invalid("no jti")
	}
	if len(c.ID) > MaxIDSize {
		return nil, invalid("jti of %d bytes, over %d", len(c.ID), MaxIDSize)
	}
	htm, ok, err := stringClaim(claims, "htm")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalid("no htm")
	}
	if htm != o.Method {
		return nil, invalid("htm %s is not the request method %s", quote(htm), quote(o.Method))
	}
	htu, ok, err := stringClaim(claims, "htu")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalid("no htu")
	}
	gotURL, err := normalizeHTU(htu)
	if err != nil {
		return nil, invalid("htu: %v", err)
	}
	if gotURL != wantURL {
		return nil, invalid("htu %s is not the request URI %s", quote(gotURL), quote(wantURL))
	}
	if c.IssuedAt.IsZero() {
		return nil, invalid("no iat")
	}
	if c.IssuedAt.Before(now.Add(-window)) {
		return nil, invalid("iat %s is more than %s before now (%s)", c.IssuedAt.UTC().Format(time.RFC3339), window, now.UTC().Format(time.RFC3339))
	}
	if c.IssuedAt.After(now.Add(skew)) {
		return nil, invalid("iat %s is more than %s after now (%s)", c.IssuedAt.UTC().Format(time.RFC3339), skew, now.UTC().Format(time.RFC3339))
	}
	ath, hasATH, err := stringClaim(claims, "ath")
	if err != nil {
		return nil, err
	}
	switch {
	case o.AccessToken == "" && hasATH:
		return nil, invalid("ath present but no access token presented")
	case o.AccessToken != "" && !hasATH:
		return nil, invalid("no ath, and the proof comes with an access token")
	case o.AccessToken != "":
		sum := sha256.Sum256([]byte(o.AccessToken))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if subtle.ConstantTimeCompare([]byte(ath), []byte(want)) != 1 {
			return nil, invalid("ath is not the hash of the access token presented")
		}
	}
	nonce, hasNonce, err := stringClaim(claims, "nonce")
	if err != nil {
		return nil, err
	}

	// The signature, with the proof's own key (check 6).
	if err := jws.Verify(h.Alg, key, []byte(t.SigningInput), t.Signature); err != nil {
		return nil, invalid("%v", err)
	}

	// The nonce last (check 10): a proof that would fail anyway gets
	// invalid_dpop_proof, not an invitation to retry with a nonce, and
	// Nonce (which may consult a store) sees only signed proofs.
	if o.Nonce != nil {
		if !hasNonce || nonce == "" {
			return nil, ErrNonceMissing
		}
		if !isNQChars(nonce) {
			return nil, fmt.Errorf("%w: nonce is not a string of NQCHARs", ErrNonceRejected)
		}
		if !o.Nonce(nonce) {
			return nil, ErrNonceRejected
		}
	}
	return &Proof{
		Thumbprint: thumbprint,
		ID:         c.ID,
		IssuedAt:   c.IssuedAt,
		Expires:    c.IssuedAt.Add(window),
		Nonce:      nonce,
		Algorithm:  h.Alg,
	}, nil
}

// AcceptedAlgorithms returns the algorithms Verify accepts under o, in
// the order of o.Algorithms, for the algs parameter of the DPoP challenge
// (RFC 9449 §7.1).
func (o Options) AcceptedAlgorithms() []string {
	algs := o.Algorithms
	if len(algs) == 0 {
		algs = jws.Algorithms
	}
	var out []string
	for _, a := range algs {
		if jws.Supported(a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// resolve applies the defaults of o and checks what the caller gave.
func (o *Options) resolve() (algs []string, window, skew time.Duration, now time.Time, err error) {
	algs = o.Algorithms
	if len(algs) == 0 {
		algs = jws.Algorithms
	}
	window = o.Window
	switch {
	case window == 0:
		window = DefaultWindow
	case window < 0:
		return nil, 0, 0, now, fmt.Errorf("%w: negative Window %s", ErrOptions, window)
	}
	skew = o.Skew
	switch {
	case skew == 0:
		skew = DefaultSkew
	case skew < 0:
		skew = 0
	}
	now = o.Now
	if now.IsZero() {
		now = time.Now()
	}
	if !isToken(o.Method) {
		return nil, 0, 0, now, fmt.Errorf("%w: Method %s is not an HTTP method", ErrOptions, quote(o.Method))
	}
	return algs, window, skew, now, nil
}

// typIsDPoP reports whether typ names the media type application/dpop+jwt
// (RFC 9449 §4.2). RFC 7515 §4.1.9: typ is a media type, media types are
// case-insensitive (RFC 2045), and a recipient MUST treat a value without
// '/' as if "application/" were prepended; so "DPoP+JWT" and
// "application/dpop+jwt" are the same type and accepted. Nothing else is,
// not even with parameters: explicit typing is what keeps an access token
// or an ID token (at+jwt, JWT) from passing as a proof (RFC 8725 §3.11).
func typIsDPoP(typ string) bool {
	return strings.EqualFold(typ, "dpop+jwt") || strings.EqualFold(typ, "application/dpop+jwt")
}

// members returns the header's and the claims' members by exact name. The
// strict parser has refused duplicate and case-folded names at every
// depth, so encoding/json's reading of them cannot differ from its own.
func members(t *jwt.Token) (header, claims map[string]json.RawMessage, err error) {
	h, _, _ := strings.Cut(t.SigningInput, ".")
	hb, err := base64.RawURLEncoding.Strict().DecodeString(h)
	if err != nil {
		return nil, nil, invalid("header: %v", err) // Decode accepted it: not reached
	}
	if err := json.Unmarshal(hb, &header); err != nil || header == nil {
		return nil, nil, invalid("header is not a JSON object")
	}
	if err := json.Unmarshal(t.Payload, &claims); err != nil || claims == nil {
		return nil, nil, invalid("claims are not a JSON object")
	}
	return header, claims, nil
}

// stringClaim reads the string member name of m: ok is false when it is
// absent or null; any other type, invalid UTF-8 and escaped lone
// surrogates (which encoding/json would turn into U+FFFD, so that two
// byte strings read alike) are errors.
func stringClaim(m map[string]json.RawMessage, name string) (s string, ok bool, err error) {
	raw, present := m[name]
	if !present || string(raw) == "null" {
		return "", false, nil
	}
	s, err = strictString(raw)
	if err != nil {
		return "", false, invalid("%s: %v", name, err)
	}
	return s, true, nil
}

// strictString decodes a JSON string, refusing what encoding/json would
// repair: invalid UTF-8 and \u escapes of lone surrogates.
func strictString(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", errors.New("not a string")
	}
	if !utf8.Valid(raw) {
		return "", errors.New("not valid UTF-8")
	}
	for i := 1; i < len(raw)-1; i++ {
		if raw[i] != '\\' {
			continue
		}
		i++
		if raw[i] != 'u' || i+4 >= len(raw) {
			continue
		}
		r := hex4(raw[i+1 : i+5])
		i += 4
		switch {
		case 0xDC00 <= r && r <= 0xDFFF:
			return "", errLoneSurrogate
		case 0xD800 <= r && r <= 0xDBFF:
			if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return "", errLoneSurrogate
			}
			if lo := hex4(raw[i+3 : i+7]); lo < 0xDC00 || lo > 0xDFFF {
				return "", errLoneSurrogate
			}
			i += 6
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errors.New("not a string")
	}
	return s, nil
}

var errLoneSurrogate = errors.New("escape of a lone surrogate")

// hex4 is the value of four hex digits, or -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// publicKey reads the jwk header parameter: a public key (no private
// member), of a type that fits alg, canonically encoded, and its RFC 7638
// thumbprint.
func publicKey(raw json.RawMessage, alg string) (crypto.PublicKey, string, error) {
	if len(raw) > MaxJWKSize {
		return nil, "", invalid("jwk of %d bytes, over %d", len(raw), MaxJWKSize)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, "", invalid("jwk is not a JSON object")
	}
	// RFC 9449 §4.3 check 7. Exact names, as jwx reads them; the parser
	// refused any name that folds to one of these.
	for _, name := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
		if _, ok := m[name]; ok {
			return nil, "", invalid("jwk has the private member %q", name)
		}
	}
	if v, ok := m["alg"]; ok {
		a, err := strictString(v)
		if err != nil || a != alg {
			return nil, "", invalid("jwk alg is not the proof's alg %s", quote(alg))
		}
	}
	// jwks refuses what cannot verify (symmetric keys, unknown types,
	// use other than sig, key_ops without verify) and what is weak (RSA
	// under 2048 or over 8192 bits, Ed25519 keys of small order or not
	// canonical), and keeps jwx in that package.
	keys, skipped, err := jwks.Parse([]byte(`{"keys":[`+string(raw)+`]}`), 1)
	if err != nil {
		return nil, "", invalid("jwk: %v", err)
	}
	if len(keys) != 1 {
		reason := "not usable"
		if len(skipped) > 0 {
			reason = skipped[0].Reason
		}
		return nil, "", invalid("jwk: %s", reason)
	}
	pub := keys[0].Public
	if !jws.KeyFits(alg, pub) {
		return nil, "", invalid("jwk (%s) does not fit alg %s", keyKind(pub), quote(alg))
	}
	req, err := requiredMembers(pub)
	if err != nil {
		return nil, "", invalid("jwk: %v", err)
	}
	// The members as sent must be the canonical ones (RFC 7518 §6: minimal
	// unsigned integers, full-size coordinates, unpadded base64url): then
	// the thumbprint of the key is the thumbprint of the JWK as the client
	// and its authorization server computed it, with one spelling only.
	for _, rm := range req {
		v, ok := m[rm.name]
		if !ok {
			return nil, "", invalid("jwk has no %s", rm.name)
		}
		s, err := strictString(v)
		if err != nil || s != rm.value {
			return nil, "", invalid("jwk member %s is not canonically encoded", rm.name)
		}
	}
	return pub, thumbprintOf(req), nil
}

// isToken reports whether s is an RFC 9110 token (a method name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isNQChars reports whether s is 1*NQCHAR (RFC 9449 §8.1:
// %x21 / %x23-5B / %x5D-7E), the syntax of a server's nonce.
func isNQChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7E || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// quote bounds and quotes client-sent text for error messages.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// KeyCache remembers what publicKey made of a jwk: a pure function of the
// member's bytes and the proof's alg, so a hit is exactly what a parse
// would give. Only keys that passed every check are kept. It is safe for
// concurrent use.
type KeyCache struct {
	keys *lru.Cache[string, parsedKey]
}

type parsedKey struct {
	pub        crypto.PublicKey
	thumbprint string
}

// NewKeyCache returns a cache of at most size keys.
func NewKeyCache(size int) *KeyCache {
	c, err := lru.New[string, parsedKey](max(size, 1))
	if err != nil {
		panic(err) // only for a size below 1
	}
	return &KeyCache{keys: c}
}

// publicKey is the package's publicKey through the cache; a nil cache
// parses.
func (c *KeyCache) publicKey(raw json.RawMessage, alg string) (crypto.PublicKey, string, error) {
	if c == nil || len(raw) > MaxJWKSize {
		return publicKey(raw, alg)
	}
	k := alg + "\x00" + string(raw)
	if p, ok := c.keys.Get(k); ok {
		return p.pub, p.thumbprint, nil
	}
	pub, thumbprint, err := publicKey(raw, alg)
	if err == nil {
		c.keys.Add(k, parsedKey{pub: pub, thumbprint: thumbprint})
	}
	return pub, thumbprint, err
}
