// Package jws verifies the signature of a JWS compact serialization with the
// standard library's crypto primitives only. It is the one place where a
// signature is checked; the differential test holds it to jwx's verdicts.
package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
)

// MinRSABits is the smallest RSA modulus accepted (RFC 7518 §3.3 requires 2048).
const MinRSABits = 2048

// MaxRSABits is the largest RSA modulus accepted. Verification cost grows
// with the modulus whatever the signature (about 25 ms at 64 Ki bits, 5 s
// at 1 Mi bits), so a huge key in a JWKS would make every token naming it
// a CPU sink; crypto/tls caps RSA keys at the same size (CVE-2023-29409).
const MaxRSABits = 8192

// ErrSignature is returned when a signature does not verify.
var ErrSignature = errors.New("jws: signature verification failed")

// ErrAlgorithm is returned for an algorithm this package does not verify.
var ErrAlgorithm = errors.New("jws: unsupported algorithm")

// ErrKeyMismatch is returned when the key cannot be used with the algorithm.
var ErrKeyMismatch = errors.New("jws: key does not match algorithm")

// Algorithms lists every algorithm Verify supports. Symmetric algorithms are
// absent on purpose: a resource server verifies with public keys only.
var Algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}

// Supported reports whether alg is one of Algorithms.
func Supported(alg string) bool {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519":
		return true
	}
	return false
}

// KeyFits reports whether key can verify alg: the right type, curve and size.
func KeyFits(alg string, key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch alg {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return k != nil && k.N != nil && k.N.BitLen() >= MinRSABits && k.N.BitLen() <= MaxRSABits
		}
	case *ecdsa.PublicKey:
		// A nil key or missing coordinates would panic in ecdsa.Verify.
		return k != nil && k.Curve != nil && k.X != nil && k.Y != nil && k.Curve == curveFor(alg)
	case ed25519.PublicKey:
		return (alg == "EdDSA" || alg == "Ed25519") && len(k) == ed25519.PublicKeySize
	}
	return false
}

func curveFor(alg string) elliptic.Curve {
	switch alg {
	case "ES256":
		return elliptic.P256()
	case "ES384":
		return elliptic.P384()
	case "ES512":
		return elliptic.P521()
	}
	return nil
}

func hashFor(alg string) crypto.Hash {
	switch alg[2:] {
	case "256":
		return crypto.SHA256
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return 0
}

func digest(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	default:
		d := sha512.Sum512(msg)
		return d[:]
	}
}

// Verify checks sig over signingInput (the ASCII "header.payload") with key
// under alg. It returns nil only for a valid signature by a key that fits alg.
func Verify(alg string, key crypto.PublicKey, signingInput, sig []byte) error {
	if !Supported(alg) {
		return fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	if !KeyFits(alg, key) {
		return fmt.Errorf("%w: %s with %T", ErrKeyMismatch, alg, key)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		h := hashFor(alg)
		d := digest(h, signingInput)
		var err error
		if alg[0] == 'P' {
			// RFC 7518 §3.5: the salt is as long as the hash.
			err = rsa.VerifyPSS(k, h, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
		} else {
			err = rsa.VerifyPKCS1v15(k, h, d, sig)
		}
		if err != nil {
			return ErrSignature
		}
		return nil
	case *ecdsa.PublicKey:
		// RFC 7518 §3.4: R and S as fixed-size big-endian integers, concatenated.
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return ErrSignature
		}
		// The same check as ecdsa.Verify on big.Ints, through VerifyASN1 on
		// a DER encoding built in one fixed-size buffer: half the
		// allocations of the big.Int route (the buffer itself escapes).
		var buf [2*(2+1+66) + 3]byte
		if !ecdsa.VerifyASN1(k, digest(hashFor(alg), signingInput), derSignature(buf[:0], sig[:size], sig[size:])) {
			return ErrSignature
		}
		return nil
	case ed25519.PublicKey:
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(k, signingInput, sig) {
			return ErrSignature
		}
		return nil
	}
	return fmt.Errorf("%w: %T", ErrKeyMismatch, key)
}

// derSignature appends the DER SEQUENCE of two INTEGERs r and s (unsigned
// big-endian, as in a JWS signature) to dst: minimal length, with a zero
// byte in front of a value whose top bit is set.
func derSignature(dst, r, s []byte) []byte {
	integer := func(out, x []byte) []byte {
		for len(x) > 1 && x[0] == 0 {
			x = x[1:]
		}
		n := len(x)
		pad := x[0]&0x80 != 0
		if pad {
			n++
		}
		out = append(out, 0x02, byte(n)) // n <= 67: short-form length
		if pad {
			out = append(out, 0)
		}
		return append(out, x...)
	}
	bodyLen := func(x []byte) int {
		for len(x) > 1 && x[0] == 0 {
			x = x[1:]
		}
		if x[0]&0x80 != 0 {
			return 3 + len(x)
		}
		return 2 + len(x)
	}
	n := bodyLen(r) + bodyLen(s)
	if n < 0x80 {
		dst = append(dst, 0x30, byte(n))
	} else {
		dst = append(dst, 0x30, 0x81, byte(n)) // P-521: up to 138 bytes
	}
	return integer(integer(dst, r), s)
}
