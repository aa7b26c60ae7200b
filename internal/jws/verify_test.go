package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"math/big"
	"testing"
)

func TestSupported(t *testing.T) {
	for _, alg := range Algorithms {
		if !Supported(alg) {
			t.Errorf("Supported(%q) = false for a listed algorithm", alg)
		}
	}
	for _, alg := range []string{
		"", "none", "None", "NONE", "HS256", "HS384", "HS512", "ES256K", "Ed448",
		"rs256", "RS256 ", " RS256", "RS", "ES", "Ed", "RS1", "RS2560", "PS", "EdDSA\x00",
		"RSA-OAEP", "A128KW", "dir", "ML-DSA-44",
	} {
		if Supported(alg) {
			t.Errorf("Supported(%q) = true", alg)
		}
	}
	if len(Algorithms) != 11 {
		t.Errorf("Algorithms has %d entries; update the tests with the list", len(Algorithms))
	}
}

func rsaPub(t *testing.T, name string) *rsa.PublicKey   { return pub(t, name).(*rsa.PublicKey) }
func ecPub(t *testing.T, name string) *ecdsa.PublicKey  { return pub(t, name).(*ecdsa.PublicKey) }
func edPub(t *testing.T, name string) ed25519.PublicKey { return pub(t, name).(ed25519.PublicKey) }
func bigOfBits(bits int) *big.Int                       { return new(big.Int).Lsh(big.NewInt(1), uint(bits-1)) }
func rsaOfBits(bits int) *rsa.PublicKey {
	return &rsa.PublicKey{N: new(big.Int).Add(bigOfBits(bits), big.NewInt(1)), E: 65537}
}
func withAlgs(algs ...string) map[string]bool {
	m := map[string]bool{}
	for _, a := range algs {
		m[a] = true
	}
	return m
}

var (
	rsaAlgs = withAlgs("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
	edAlgs  = withAlgs("EdDSA", "Ed25519")
)

// keyFitsCase lists, for one key, every alg in Algorithms it fits; all
// other algs (and a few unsupported ones) must not fit.
type keyFitsCase struct {
	name string
	key  crypto.PublicKey
	fits map[string]bool
}

func keyFitsCases(t *testing.T) []keyFitsCase {
	p256 := ecPub(t, "p256")
	ed := edPub(t, "ed25519")
	return []keyFitsCase{
		{"RSA 2048", rsaPub(t, "rsa2048"), rsaAlgs},
		{"RSA 3072", rsaPub(t, "rsa3072"), rsaAlgs},
		{"RSA 1024 (below MinRSABits)", rsaPub(t, "rsa1024"), nil},
		{"RSA 2047 bits", rsaOfBits(2047), nil},
		{"RSA exactly 2048 bits", rsaOfBits(2048), rsaAlgs},
		{"P-256", p256, withAlgs("ES256")},
		{"P-384", ecPub(t, "p384"), withAlgs("ES384")},
		{"P-521", ecPub(t, "p521"), withAlgs("ES512")},
		// The generic CurveParams implementation of P-256 is a different
		// Curve value: refused (only the standard library's constant-time
		// curves are used).
		{"P-256 as *elliptic.CurveParams", &ecdsa.PublicKey{Curve: elliptic.P256().Params(), X: p256.X, Y: p256.Y}, nil},
		{"P-224", &ecdsa.PublicKey{Curve: elliptic.P224(), X: elliptic.P224().Params().Gx, Y: elliptic.P224().Params().Gy}, nil},
		{"Ed25519", ed, edAlgs},
		{"Ed25519, 31 bytes", ed[:31], nil},
		{"Ed25519, 33 bytes", append(append(ed25519.PublicKey(nil), ed...), 0), nil},
		{"Ed25519, empty", ed25519.PublicKey{}, nil},
		{"Ed25519, nil", ed25519.PublicKey(nil), nil},
		{"*ed25519.PublicKey (pointer)", &ed, nil},
		{"ecdsa.PublicKey (value, not pointer)", *p256, nil},
		{"rsa.PublicKey (value, not pointer)", *rsaPub(t, "rsa2048"), nil},
		{"*rsa.PrivateKey", priv(t, "rsa2048"), nil},
		{"*ecdsa.PrivateKey", priv(t, "p256"), nil},
		{"ed25519.PrivateKey", priv(t, "ed25519"), nil},
		{"HMAC secret []byte", []byte("0123456789abcdef0123456789abcdef"), nil},
		{"string", "key", nil},
		{"nil interface", nil, nil},
		// Nil-ish keys: must not fit, must not panic.
		{"(*rsa.PublicKey)(nil)", (*rsa.PublicKey)(nil), nil},
		{"&rsa.PublicKey{}", &rsa.PublicKey{}, nil},
		{"&rsa.PublicKey{N: 0}", &rsa.PublicKey{N: new(big.Int), E: 65537}, nil},
		{"(*ecdsa.PublicKey)(nil)", (*ecdsa.PublicKey)(nil), nil},
		{"&ecdsa.PublicKey{}", &ecdsa.PublicKey{}, nil},
		{"P-256 with nil X and Y", &ecdsa.PublicKey{Curve: elliptic.P256()}, nil},
		{"P-256 with nil Y", &ecdsa.PublicKey{Curve: elliptic.P256(), X: p256.X}, nil},
	}
}

func TestKeyFits(t *testing.T) {
	algs := append([]string{"", "none", "HS256", "ES256K", "Ed448", "RS", "ES"}, Algorithms...)
	for _, tc := range keyFitsCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			for _, alg := range algs {
				if got := KeyFits(alg, tc.key); got != tc.fits[alg] {
					t.Errorf("KeyFits(%q, %T) = %v, want %v", alg, tc.key, got, tc.fits[alg])
				}
			}
		})
	}
}

// TestVerifyKeyMismatch: a key that does not fit alg gives ErrKeyMismatch
// before any cryptography, and never panics, whatever the signature.
func TestVerifyKeyMismatch(t *testing.T) {
	sigs := [][]byte{nil, {}, make([]byte, 64), make([]byte, 256), make([]byte, 512)}
	in := []byte(signingInputFor("RS256"))
	for _, tc := range keyFitsCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			for _, alg := range Algorithms {
				if tc.fits[alg] {
					continue
				}
				for _, sig := range sigs {
					if err := Verify(alg, tc.key, in, sig); !errors.Is(err, ErrKeyMismatch) {
						t.Errorf("Verify(%q, %T, sig[%d]) = %v, want ErrKeyMismatch", alg, tc.key, len(sig), err)
					}
				}
			}
		})
	}
}

func TestVerifyUnsupportedAlgorithm(t *testing.T) {
	tok := token(t, "RS256", "rsa2048")
	in, _ := split(tok)
	for _, alg := range []string{"", "none", "HS256", "rs256", "RS256 ", "ES256K"} {
		if err := Verify(alg, pub(t, "rsa2048"), []byte(in), sigOf(t, tok)); !errors.Is(err, ErrAlgorithm) {
			t.Errorf("Verify(%q) = %v, want ErrAlgorithm", alg, err)
		}
	}
	// An HMAC "key" never verifies, even for an HS256 token built with it.
	if err := Verify("HS256", []byte("secret"), []byte(in), make([]byte, 32)); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("Verify(HS256, []byte) = %v, want ErrAlgorithm", err)
	}
}

// TestVerifyErrors: the sentinel a caller sees for each kind of failure.
func TestVerifyErrors(t *testing.T) {
	for _, alg := range Algorithms {
		tok := token(t, alg, keyFor(alg))
		in, _ := split(tok)
		sig := sigOf(t, tok)
		key := pub(t, keyFor(alg))
		if err := Verify(alg, key, []byte(in), sig); err != nil {
			t.Errorf("%s: valid token: %v", alg, err)
		}
		if err := Verify(alg, key, []byte(in), flipBit(sig, 1)); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: bad signature: %v, want ErrSignature", alg, err)
		}
		if err := Verify(alg, key, []byte(in+"x"), sig); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: other input: %v, want ErrSignature", alg, err)
		}
		if err := Verify(alg, key, nil, nil); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: nil input and signature: %v, want ErrSignature", alg, err)
		}
	}
}

// TestVerifyOffCurvePoint: an ECDSA key whose point is not on its curve
// fits by type but never verifies (and does not panic).
func TestVerifyOffCurvePoint(t *testing.T) {
	tok := token(t, "ES256", "p256")
	in, _ := split(tok)
	p := ecPub(t, "p256")
	for name, k := range map[string]*ecdsa.PublicKey{
		"(0,0)":        {Curve: elliptic.P256(), X: new(big.Int), Y: new(big.Int)},
		"Y+1":          {Curve: elliptic.P256(), X: p.X, Y: new(big.Int).Add(p.Y, big.NewInt(1))},
		"X = P":        {Curve: elliptic.P256(), X: elliptic.P256().Params().P, Y: p.Y},
		"negative X":   {Curve: elliptic.P256(), X: new(big.Int).Neg(p.X), Y: p.Y},
		"X > 2^256":    {Curve: elliptic.P256(), X: new(big.Int).Lsh(big.NewInt(1), 300), Y: p.Y},
		"Y negative 1": {Curve: elliptic.P256(), X: p.X, Y: big.NewInt(-1)},
	} {
		if err := Verify("ES256", k, []byte(in), sigOf(t, tok)); err == nil {
			t.Errorf("%s: off-curve key verified", name)
		}
	}
}
