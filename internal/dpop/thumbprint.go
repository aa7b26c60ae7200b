package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strconv"
)

// member is one required member of a JWK (RFC 7638 §3.2) and its value.
type member struct{ name, value string }

// Thumbprint returns the RFC 7638 JWK thumbprint of pub with SHA-256,
// base64url without padding, as cnf.jkt holds it (RFC 9449 §6.1). pub is
// an *rsa.PublicKey, an *ecdsa.PublicKey on P-256, P-384 or P-521, or an
// ed25519.PublicKey; it is computed from the key, so every JWK spelling of
// one key has the same thumbprint (Verify refuses the non-canonical ones).
func Thumbprint(pub crypto.PublicKey) (string, error) {
	req, err := requiredMembers(pub)
	if err != nil {
		return "", err
	}
	return thumbprintOf(req), nil
}

// thumbprintOf hashes the JSON object of the required members: names in
// lexicographic order (req is sorted), no white space (RFC 7638 §3.3).
// The values are base64url or curve and type names, which need no JSON
// escaping.
func thumbprintOf(req []member) string {
	b := []byte{'{'}
	for i, m := range req {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, m.name)
		b = append(b, ':')
		b = strconv.AppendQuote(b, m.value)
	}
	b = append(b, '}')
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// requiredMembers returns the members RFC 7638 §3.2 hashes for pub, in
// lexicographic order of their names, in their canonical encoding: RSA
// (RFC 7518 §6.3.1) e, kty, n as minimal big-endian integers; EC (§6.2.1)
// crv, kty, x, y as coordinates of the curve's full size; OKP (RFC 8037
// §2) crv, kty, x.
func requiredMembers(pub crypto.PublicKey) ([]member, error) {
	enc := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil || k.N.Sign() <= 0 || k.E <= 0 {
			return nil, errors.New("RSA key without modulus or exponent")
		}
		return []member{
			{"e", enc(big.NewInt(int64(k.E)).Bytes())},
			{"kty", "RSA"},
			{"n", enc(k.N.Bytes())},
		}, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil || k.X == nil || k.Y == nil {
			return nil, errors.New("EC key without curve or coordinates")
		}
		var crv string
		switch k.Curve {
		case elliptic.P256():
			crv = "P-256"
		case elliptic.P384():
			crv = "P-384"
		case elliptic.P521():
			crv = "P-521"
		default:
			return nil, fmt.Errorf("EC key on the curve %s", k.Curve.Params().Name)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		if k.X.Sign() < 0 || k.Y.Sign() < 0 || k.X.BitLen() > 8*size || k.Y.BitLen() > 8*size {
			return nil, errors.New("EC key with coordinates out of range")
		}
		return []member{
			{"crv", crv},
			{"kty", "EC"},
			{"x", enc(k.X.FillBytes(make([]byte, size)))},
			{"y", enc(k.Y.FillBytes(make([]byte, size)))},
		}, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("Ed25519 key of %d bytes", len(k))
		}
		return []member{
			{"crv", "Ed25519"},
			{"kty", "OKP"},
			{"x", enc(k)},
		}, nil
	}
	return nil, fmt.Errorf("key of type %T", pub)
}

// keyKind names a key's type for error messages.
func keyKind(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}
