package jws

import (
	"crypto/rsa"
	"errors"
	"math/big"
	"testing"
	"time"
)

// An RSA key over MaxRSABits never reaches the modular exponentiation:
// with a 1 Mi-bit modulus one Verify cost ~5 s of CPU whatever the
// signature, so a huge key in a JWKS was a per-request CPU sink.
func TestAttackHugeRSAModulusRefusedBeforeCrypto(t *testing.T) {
	for _, bits := range []int{MaxRSABits + 1, 1 << 16, 1 << 20} {
		n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		n.SetBit(n, 0, 1)
		key := &rsa.PublicKey{N: n, E: 65537}
		for _, alg := range []string{"RS256", "PS512"} {
			if KeyFits(alg, key) {
				t.Errorf("KeyFits(%s, %d-bit RSA) = true", alg, bits)
			}
			start := time.Now()
			err := Verify(alg, key, []byte("a.b"), make([]byte, (bits+7)/8))
			if !errors.Is(err, ErrKeyMismatch) {
				t.Errorf("Verify(%s, %d-bit RSA) = %v, want ErrKeyMismatch", alg, bits, err)
			}
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Errorf("Verify(%s, %d-bit RSA) took %s", alg, bits, d)
			}
		}
	}
	// The largest accepted size still fits.
	n := new(big.Int).Lsh(big.NewInt(1), MaxRSABits-1)
	n.SetBit(n, 0, 1)
	if !KeyFits("RS256", &rsa.PublicKey{N: n, E: 65537}) {
		t.Errorf("KeyFits(RS256, %d-bit RSA) = false", MaxRSABits)
	}
}
