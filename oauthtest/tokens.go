package oauthtest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"time"
)

// tokenHash is the SHA-256 of a token. The server keeps opaque tokens and
// revocations under their hashes, never the tokens themselves.
type tokenHash [sha256.Size]byte

func hashToken(token string) tokenHash { return sha256.Sum256([]byte(token)) }

// MintOpaque returns a new opaque access token: Options.OpaqueTokenPrefix
// and 43 characters of unpadded base64url (32 random bytes), with no dots,
// so it never looks like a JWT.
// The server remembers the claims under the token's SHA-256 hash and answers
// them at the introspection endpoint ([Server.IntrospectionURL]) while the
// token is active: not revoked (see [Server.Revoke]), not expired, and not
// before its nbf when it has one.
//
// The defaults and the handling of nil and time.Time values are those of
// [Server.Mint]: iss Issuer, aud Resource(), sub "user-1", client_id
// "client-1", iat now, exp now + Options.TokenLifetime and a random jti, and
// no scope. Claims{"exp": nil} mints a token that never expires. Any other
// claim is returned by introspection as given, so a test can mint a token with
// a foreign iss, an audience array or a token_type of its own. The claims are
// encoded when MintOpaque is called; later changes to claims have no effect.
//
// MintOpaque panics if the server has not started or if claims cannot be
// encoded as JSON.
func (s *Server) MintOpaque(claims Claims) string {
	if s.URL == "" {
		panic("oauthtest: MintOpaque before the server started")
	}
	all := s.defaultClaims(s.opts.Now())
	merge(all, claims)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(all); err != nil {
		panic("oauthtest: MintOpaque: " + err.Error())
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails, see crypto/rand.Read
	token := s.opts.OpaqueTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opaque[hashToken(token)] = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return token
}

// defaultClaims returns the default claims of Mint and MintOpaque.
func (s *Server) defaultClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss":       s.Issuer,
		"aud":       s.resource,
		"sub":       "user-1",
		"client_id": "client-1",
		"iat":       now.Unix(),
		"exp":       now.Add(s.opts.TokenLifetime).Unix(),
		"jti":       randomID(),
	}
}

// Revoke revokes token, an opaque token from [Server.MintOpaque] or the token
// endpoint, or a JWT signed by this server: from then on, introspection
// answers {"active": false} for it and it no longer authenticates a client at
// the introspection endpoint. Revoke does not change what a resource server
// that validates JWTs locally decides; that is the point of testing
// revocation through introspection. Revoking an unknown token, or a token
// twice, does nothing more. The server keeps only the token's SHA-256 hash.
func (s *Server) Revoke(token string) {
	h := hashToken(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[h] = struct{}{}
	delete(s.opaque, h)
}

// activeClaims returns the claims of token if it is active: an opaque token
// of this server, or a JWT signed by one of its keys (current or retired),
// not revoked, not expired and not before its nbf. It returns nil otherwise.
// The map is freshly decoded, numbers as json.Number.
func (s *Server) activeClaims(token string) map[string]any {
	if token == "" {
		return nil
	}
	h := hashToken(token)
	s.mu.Lock()
	_, revoked := s.revoked[h]
	raw, opaque := s.opaque[h]
	s.mu.Unlock()
	var claims map[string]any
	switch {
	case revoked:
		return nil
	case opaque:
		claims = decodeObject(raw)
	default:
		claims = s.verifyJWT(token)
	}
	if claims == nil || !timely(claims, s.opts.Now()) {
		return nil
	}
	return claims
}

// timely reports whether now is before exp and not before nbf, each when
// present. A claim that is present but not a number fails.
func timely(claims map[string]any, now time.Time) bool {
	t := float64(now.UnixNano()) / 1e9
	if v, ok := claims["exp"]; ok {
		exp, ok := numericDate(v)
		if !ok || t >= exp {
			return false
		}
	}
	if v, ok := claims["nbf"]; ok {
		nbf, ok := numericDate(v)
		if !ok || t < nbf {
			return false
		}
	}
	return true
}

func numericDate(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// decodeObject decodes a JSON object with numbers as json.Number, or returns
// nil.
func decodeObject(raw []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || dec.More() {
		return nil
	}
	return m
}

// verifyJWT returns the claims of a JWS compact serialization whose header
// names the algorithm of one of the server's own signing keys (by kid, or any
// key of that algorithm when there is no kid) and whose signature verifies
// with that key. Keys published with PublishExtraKey are not the server's and
// never verify anything. It returns nil otherwise.
func (s *Server) verifyJWT(token string) map[string]any {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	b64 := base64.RawURLEncoding.Strict()
	rawHeader, err1 := b64.DecodeString(parts[0])
	rawClaims, err2 := b64.DecodeString(parts[1])
	sig, err3 := b64.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil
	}
	header := decodeObject(rawHeader)
	alg, _ := header["alg"].(string)
	kid, hasKID := header["kid"].(string)
	if alg == "" || (!hasKID && header["kid"] != nil) {
		return nil
	}
	var candidates []crypto.PublicKey
	s.mu.Lock()
	for _, k := range s.keys {
		if k.alg == alg && (!hasKID || k.kid == kid) {
			candidates = append(candidates, k.signer.Public())
		}
	}
	s.mu.Unlock()
	input := []byte(parts[0] + "." + parts[1])
	for _, pub := range candidates {
		if verifySignature(pub, alg, input, sig) {
			return decodeObject(rawClaims)
		}
	}
	return nil
}

// verifySignature checks a JWS signature made by sign.
func verifySignature(pub crypto.PublicKey, alg string, input, sig []byte) bool {
	spec, err := lookupAlg(alg)
	if err != nil {
		return false
	}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if spec.kty != "RSA" {
			return false
		}
		d := digest(spec.hash, input)
		if spec.pss {
			return rsa.VerifyPSS(pub, spec.hash, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(pub, spec.hash, d, sig) == nil
	case *ecdsa.PublicKey:
		if spec.kty != "EC" || pub.Curve != spec.curve {
			return false
		}
		size := (spec.curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r, ss := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(pub, digest(spec.hash, input), r, ss)
	case ed25519.PublicKey:
		return spec.kty == "OKP" && ed25519.Verify(pub, input, sig)
	}
	return false
}
