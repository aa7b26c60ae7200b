package jws

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// keyNames lists the private keys under testdata/keys. The order is part of
// the fuzz corpus format (FuzzVerifyDifferential picks a key by index), so
// append only.
var keyNames = []string{
	"rsa2048", "rsa2048-other", "rsa3072", "rsa1024",
	"p256", "p256-other", "p384", "p384-other", "p521", "p521-other",
	"ed25519", "ed25519-other",
}

var (
	keysOnce sync.Once
	keysErr  error
	privKeys map[string]crypto.Signer
)

func loadKeys() error {
	keysOnce.Do(func() {
		privKeys = make(map[string]crypto.Signer, len(keyNames))
		for _, name := range keyNames {
			b, err := os.ReadFile(filepath.Join("testdata", "keys", name+".pem"))
			if err != nil {
				keysErr = err
				return
			}
			blk, _ := pem.Decode(b)
			if blk == nil {
				keysErr = fmt.Errorf("%s: no PEM block", name)
				return
			}
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				keysErr = fmt.Errorf("%s: %w", name, err)
				return
			}
			privKeys[name] = k.(crypto.Signer)
		}
	})
	return keysErr
}

func priv(t testing.TB, name string) crypto.Signer {
	t.Helper()
	if err := loadKeys(); err != nil {
		t.Fatalf("loading test keys: %v", err)
	}
	k, ok := privKeys[name]
	if !ok {
		t.Fatalf("no test key %q", name)
	}
	return k
}

func pub(t testing.TB, name string) crypto.PublicKey {
	t.Helper()
	return priv(t, name).Public()
}

func keyIndex(t testing.TB, name string) uint8 {
	t.Helper()
	for i, n := range keyNames {
		if n == name {
			return uint8(i)
		}
	}
	t.Fatalf("no test key %q", name)
	return 0
}

// keyFor names the test key that signs alg.
func keyFor(alg string) string {
	switch alg {
	case "ES256":
		return "p256"
	case "ES384":
		return "p384"
	case "ES512":
		return "p521"
	case "EdDSA", "Ed25519":
		return "ed25519"
	}
	return "rsa2048"
}

// otherKeyFor names a key of the right type and size that did not sign alg.
func otherKeyFor(alg string) string { return keyFor(alg) + "-other" }

var b64 = base64.RawURLEncoding

// signingInputFor builds the canonical "header.payload" for alg.
func signingInputFor(alg string) string {
	h := `{"alg":"` + alg + `","typ":"at+jwt","kid":"k1"}`
	p := `{"iss":"https://as.example","sub":"alice","aud":"https://rs.example","exp":4102444800,"scope":"read write"}`
	return b64.EncodeToString([]byte(h)) + "." + b64.EncodeToString([]byte(p))
}

// rawSign signs input under alg's hash and padding with any private key,
// with no check that the key suits alg: tests use it to craft tokens a
// careful signer would refuse to make (e.g. ES256 with a P-384 key).
// ECDSA signatures are r||s, each padded to the key's curve size.
func rawSign(t testing.TB, alg string, k crypto.Signer, input []byte) []byte {
	t.Helper()
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input)
	case *rsa.PrivateKey:
		h := hashFor(alg)
		d := digest(h, input)
		var sig []byte
		var err error
		if alg[0] == 'P' {
			sig, err = rsa.SignPSS(rand.Reader, k, h, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
		} else {
			sig, err = rsa.SignPKCS1v15(nil, k, h, d)
		}
		if err != nil {
			t.Fatalf("rsa sign: %v", err)
		}
		return sig
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest(hashFor(alg), input))
		if err != nil {
			t.Fatalf("ecdsa sign: %v", err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	}
	t.Fatalf("rawSign: unsupported key %T", k)
	return nil
}

// token returns a compact JWS signed under alg by the named key.
func token(t testing.TB, alg, keyName string) string {
	t.Helper()
	in := signingInputFor(alg)
	return in + "." + b64.EncodeToString(rawSign(t, alg, priv(t, keyName), []byte(in)))
}

// split cuts a compact token into signing input and signature part.
func split(tok string) (input, sigPart string) {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 {
		return tok, ""
	}
	return tok[:i], tok[i+1:]
}

// withSig replaces the signature of tok.
func withSig(tok string, sig []byte) string {
	in, _ := split(tok)
	return in + "." + b64.EncodeToString(sig)
}

func sigOf(t testing.TB, tok string) []byte {
	t.Helper()
	_, s := split(tok)
	b, err := b64.Strict().DecodeString(s)
	if err != nil {
		t.Fatalf("signature of %q: %v", tok, err)
	}
	return b
}

// errEncoding marks a token our side refuses before any cryptography: not
// three parts, or a part that is not canonical unpadded base64url. jwx
// decodes leniently (padding, the standard alphabet, stray CR/LF and
// non-zero trailing bits are all accepted and re-encoded), so on such
// tokens jwx may accept what we reject; that is the safe direction.
var errEncoding = errors.New("not a canonical compact JWS")

// canonicalPart reports whether s is canonical unpadded base64url. The
// standard library's Strict mode still skips CR and LF, so they are
// checked apart.
func canonicalPart(s string) bool {
	if strings.ContainsAny(s, "\r\n") {
		return false
	}
	_, err := b64.Strict().DecodeString(s)
	return err == nil
}

// ourVerify is our side of the differential: a strict split of the compact
// serialization, then Verify over the signing input exactly as sent.
func ourVerify(alg string, key crypto.PublicKey, tok string) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errEncoding
	}
	for _, p := range parts {
		if !canonicalPart(p) {
			return errEncoding
		}
	}
	sig, _ := b64.DecodeString(parts[2])
	return Verify(alg, key, []byte(parts[0]+"."+parts[1]), sig)
}

// errJWXPanic is returned by jwxVerify when jwx panics.
var errJWXPanic = errors.New("jwx panicked")

// jwxVerify is jwx v3's verdict on the compact token under alg and key,
// with a panic inside jwx turned into errJWXPanic. jwx_test.go sets it;
// keeping it a variable lets the crypto-only tests stand without jwx.
var jwxVerify func(alg string, key crypto.PublicKey, tok string) error

// needJWX skips t when the jwx side of the differential is not built in.
func needJWX(t testing.TB) {
	t.Helper()
	if jwxVerify == nil {
		t.Fatal("jwx differential not built in (jwx_test.go missing)")
	}
}

// expectedDifference reports whether our verifier is documented to reject
// alg with key while jwx may accept: RSA moduli below MinRSABits, and
// ECDSA keys on a curve other than the one RFC 7518 §3.4 binds to alg
// (jwx v3 classifies raw ECDSA keys by key type only and never reads the
// curve, so it verifies ES256 with a P-384 key, hashing with SHA-256).
func expectedDifference(alg string, key crypto.PublicKey) (string, bool) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k != nil && k.N != nil && k.N.BitLen() < MinRSABits && (alg[0] == 'R' || alg[0] == 'P') {
			return fmt.Sprintf("RSA %d bits < MinRSABits", k.N.BitLen()), true
		}
	case *ecdsa.PublicKey:
		if k != nil && k.Curve != nil && len(alg) == 5 && alg[:2] == "ES" && k.Curve != curveFor(alg) {
			return fmt.Sprintf("%s with curve %s", alg, k.Curve.Params().Name), true
		}
	}
	return "", false
}

// compare fails t when our verdict and jwx's disagree, except in the
// directions documented by errEncoding and expectedDifference, where only
// "we reject" is required. It returns both verdicts; without jwx built in
// it returns ours and a nil theirs, and checks nothing.
func compare(t testing.TB, alg string, key crypto.PublicKey, tok string) (ours, theirs error) {
	t.Helper()
	ours = ourVerify(alg, key, tok)
	if jwxVerify == nil {
		return ours, nil
	}
	theirs = jwxVerify(alg, key, tok)
	if errors.Is(theirs, errJWXPanic) {
		t.Fatalf("%s: %v\ntoken: %q", alg, theirs, tok)
	}
	if ours == nil && theirs != nil {
		t.Fatalf("%s: we ACCEPT a token jwx rejects (%v)\ntoken: %q", alg, theirs, tok)
	}
	if ours != nil && theirs == nil {
		if errors.Is(ours, errEncoding) {
			return ours, theirs
		}
		if why, ok := expectedDifference(alg, key); ok && errors.Is(ours, ErrKeyMismatch) {
			t.Logf("%s: documented difference (%s): we reject, jwx accepts", alg, why)
			return ours, theirs
		}
		t.Fatalf("%s: we REJECT a token jwx accepts (ours: %v)\ntoken: %q", alg, ours, tok)
	}
	return ours, theirs
}
