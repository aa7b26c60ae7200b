package jwks

import (
	"crypto/ed25519"
	"fmt"
	"math/big"
)

// Ed25519 public keys that no authorization server has a reason to publish.
//
// crypto/ed25519.Verify checks R = [S]B - [k]A without the cofactor and
// decodes every encoding edwards25519 accepts. When A is one of the 8 points
// of small order (the torsion subgroup), R = identity and S = 0 verify every
// message whose k = SHA-512(R || A || M) mod L is a multiple of A's order:
// every message for the identity, one in eight at worst. Anyone can sign for
// such a key, so it is refused when the set is parsed, like an RSA key with
// e = 1. Encodings RFC 8032 §5.1.3 rejects (y not reduced, x = 0 with the
// sign bit set) and points off the curve are refused with them.
//
// The checks use math/big, not crypto/ecdh's X25519 (which would give the
// same verdict: a clamped scalar is a multiple of 8), because X25519 is
// unavailable in FIPS 140-only mode while Ed25519 is not.

var (
	// edP is the field prime 2^255 - 19.
	edP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	// edD is the curve constant -121665/121666 mod p (RFC 8032 §5.1).
	edD = func() *big.Int {
		d := new(big.Int).ModInverse(big.NewInt(121666), edP)
		d.Mul(d, big.NewInt(-121665))
		return d.Mod(d, edP)
	}()
	edOne = big.NewInt(1)
)

// ed25519Flaw returns why pub must not verify signatures, or "" when it is a
// canonically encoded point on the curve outside the torsion subgroup.
func ed25519Flaw(pub ed25519.PublicKey) string {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Sprintf("Ed25519 public key of %d bytes, not %d", len(pub), ed25519.PublicKeySize)
	}
	// RFC 8032 §5.1.2: y little-endian in 255 bits, then the sign of x.
	var be [ed25519.PublicKeySize]byte
	for i, b := range pub {
		be[len(be)-1-i] = b
	}
	negX := be[0]&0x80 != 0
	be[0] &= 0x7f
	y := new(big.Int).SetBytes(be[:])
	if y.Cmp(edP) >= 0 {
		return "Ed25519 public key is not canonical: y is not below 2^255-19"
	}
	xx := edXX(y)
	if xx == nil {
		return "Ed25519 public key is not a point on the curve"
	}
	if negX && xx.Sign() == 0 {
		return "Ed25519 public key is not canonical: x is 0 with its sign bit set"
	}
	// The order of a small-order point divides 8: the identity (y = 1) is
	// reached within three doublings exactly for those points.
	for order := 1; ; order *= 2 {
		if y.Cmp(edOne) == 0 {
			return fmt.Sprintf("Ed25519 public key is a point of small order %d: anyone can forge signatures it verifies", order)
		}
		if order == 8 {
			return ""
		}
		// Neither can fail for a point on the curve; refuse if one does.
		if y = edDoubleY(y, xx); y == nil {
			return "Ed25519 public key: its order cannot be checked"
		}
		if xx = edXX(y); xx == nil {
			return "Ed25519 public key: its order cannot be checked"
		}
	}
}

// edXX returns x² for the point with coordinate y (reduced mod p):
// (y² - 1) / (d·y² + 1), from -x² + y² = 1 + d·x²·y². It returns nil when that
// is not a square, so no point has this y. The denominator is never 0: -1/d
// is not a square.
func edXX(y *big.Int) *big.Int {
	yy := new(big.Int).Mul(y, y)
	yy.Mod(yy, edP)
	num := new(big.Int).Sub(yy, edOne)
	den := new(big.Int).Mul(edD, yy)
	den.Add(den, edOne)
	inv := new(big.Int).ModInverse(den.Mod(den, edP), edP)
	if inv == nil {
		return nil
	}
	xx := num.Mul(num, inv)
	xx.Mod(xx, edP)
	if big.Jacobi(xx, edP) < 0 {
		return nil
	}
	return xx
}

// edDoubleY returns the y coordinate of 2P from P's y and x²:
// (y² + x²) / (1 - d·x²·y²), the addition law of RFC 8032 §5.1.4 with both
// points equal. x's sign does not matter: P and -P double to points with the
// same y. The law is complete, so the denominator is never 0 on the curve.
func edDoubleY(y, xx *big.Int) *big.Int {
	yy := new(big.Int).Mul(y, y)
	yy.Mod(yy, edP)
	num := new(big.Int).Add(yy, xx)
	den := new(big.Int).Mul(edD, xx)
	den.Mul(den, yy)
	den.Sub(edOne, den)
	inv := new(big.Int).ModInverse(den.Mod(den, edP), edP)
	if inv == nil {
		return nil
	}
	num.Mul(num, inv)
	return num.Mod(num, edP)
}
