package jws

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"flag"
	"math/big"
	"strings"
	"testing"
)

// The differential rule: for every alg in Algorithms, Verify and jwx v3's
// jws.Verify(compact, jws.WithKey(alg, key)) accept and reject the same
// tokens. Documented exceptions, all in the direction "we reject, jwx
// accepts", are pinned by TestVerifyDifferentialKnownDifferences.

type diffCase struct {
	name string
	alg  string // the alg handed to both verifiers
	key  string // name of the verification key (see keyNames)
	tok  string
	want bool // both verifiers accept
}

func flipBit(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i%len(c)] ^= 0x01
	return c
}

// flipPayloadBit flips one bit of the decoded payload and re-encodes it
// canonically, leaving header and signature alone.
func flipPayloadBit(t testing.TB, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	p, err := b64.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = b64.EncodeToString(flipBit(p, 7))
	return strings.Join(parts, ".")
}

func ecSize(c elliptic.Curve) int { return (c.Params().BitSize + 7) / 8 }

// ecdsaTokenWithLeadingZero signs until r or s has a leading zero byte and
// returns the token with that byte stripped (a 2*size-1 byte signature).
func ecdsaTokenWithLeadingZero(t testing.TB, alg string) string {
	t.Helper()
	k := priv(t, keyFor(alg)).(*ecdsa.PrivateKey)
	size := ecSize(k.Curve)
	for range 5000 {
		tok := token(t, alg, keyFor(alg))
		sig := sigOf(t, tok)
		switch {
		case sig[0] == 0:
			return withSig(tok, sig[1:])
		case sig[size] == 0:
			return withSig(tok, append(append([]byte(nil), sig[:size]...), sig[size+1:]...))
		}
	}
	t.Fatalf("%s: no signature with a leading zero byte in 5000 tries", alg)
	return ""
}

func ecdsaCases(t testing.TB, alg string) []diffCase {
	kname := keyFor(alg)
	curve := priv(t, kname).(*ecdsa.PrivateKey).Curve
	size := ecSize(curve)
	n := curve.Params().N
	tok := token(t, alg, kname)
	sig := sigOf(t, tok)
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])

	der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
	if err != nil {
		t.Fatal(err)
	}
	highS := make([]byte, 2*size)
	copy(highS, sig[:size])
	new(big.Int).Sub(n, s).FillBytes(highS[size:])
	rZero := append(make([]byte, size), sig[size:]...)
	sZero := append(append([]byte(nil), sig[:size]...), make([]byte, size)...)
	rN := make([]byte, 2*size) // r = N: out of range, ≡ 0 mod N
	n.FillBytes(rN[:size])
	copy(rN[size:], sig[size:])

	// A genuine token of another ES alg, verified with that alg but a key
	// on our curve, and our token verified with another curve's key.
	otherAlg, otherKey, otherCurve := "ES384", "p384", "P-384"
	if alg == "ES384" {
		otherAlg, otherKey, otherCurve = "ES256", "p256", "P-256"
	}
	crv := curve.Params().Name
	return []diffCase{
		{"DER signature instead of r||s", alg, kname, withSig(tok, der), false},
		// crypto/ecdsa (under both verifiers) does not enforce low S, so
		// (r, N-s) is a second valid signature: a token has two accepted
		// spellings, and nothing may use the token text as an identity
		// (replay detection belongs on jti).
		{"high-S (N-s), r||s", alg, kname, withSig(tok, highS), true},
		{"r = 0", alg, kname, withSig(tok, rZero), false},
		{"s = 0", alg, kname, withSig(tok, sZero), false},
		{"r = N", alg, kname, withSig(tok, rN), false},
		{"r||s with a leading zero byte stripped", alg, kname, ecdsaTokenWithLeadingZero(t, alg), false},
		{"verified with a " + otherCurve + " key", alg, otherKey, tok, false},
		{"genuine " + otherAlg + " token verified as " + otherAlg + " with a " + crv + " key", otherAlg, kname, token(t, otherAlg, otherKey), false},
		{"verified with an RSA key", alg, "rsa2048", tok, false},
		{"verified with an Ed25519 key", alg, "ed25519", tok, false},
	}
}

func rsaCases(t testing.TB, alg string) []diffCase {
	tok := token(t, alg, "rsa2048")
	swapped := map[byte]byte{'R': 'P', 'P': 'R'}[alg[0]]
	other := string(swapped) + alg[1:]
	cases := []diffCase{
		{alg + " signature verified as " + other + " (PKCS1-v1_5 vs PSS swapped)", other, "rsa2048", tok, false},
		{"verified with a 3072-bit key that did not sign it", alg, "rsa3072", tok, false},
		{"signature zero-padded to 257 bytes", alg, "rsa2048", withSig(tok, append([]byte{0}, sigOf(t, tok)...)), false},
		{"verified with a P-256 key", alg, "p256", tok, false},
		{"verified with an Ed25519 key", alg, "ed25519", tok, false},
	}
	if alg[0] == 'P' {
		// RFC 7518 §3.5: salt length = hash length. Other lengths must fail
		// on both sides (both pin PSSSaltLengthEqualsHash).
		in, _ := split(tok)
		k := priv(t, "rsa2048").(*rsa.PrivateKey)
		h := hashFor(alg)
		for _, sl := range []struct {
			name string
			n    int
		}{{"PSS salt length 20 (SHA-1 size)", 20}, {"PSS maximal salt length", rsa.PSSSaltLengthAuto}} {
			sig, err := rsa.SignPSS(rand.Reader, k, h, digest(h, []byte(in)), &rsa.PSSOptions{SaltLength: sl.n, Hash: h})
			if err != nil {
				t.Fatal(err)
			}
			cases = append(cases, diffCase{sl.name, alg, "rsa2048", withSig(tok, sig), false})
		}
	}
	// A 3072-bit signature: valid and accepted with the 3072-bit key.
	cases = append(cases, diffCase{"valid, 3072-bit key", alg, "rsa3072", token(t, alg, "rsa3072"), true})
	return cases
}

// l is the order of the Ed25519 base point, 2^252 + 27742317777372353535851937790883648493.
var ed25519L, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

func eddsaCases(t testing.TB, alg string) []diffCase {
	tok := token(t, alg, "ed25519")
	sig := sigOf(t, tok)
	// Non-canonical S: S + L still fits 32 bytes; RFC 8032 §5.1.7 requires
	// rejecting S >= L.
	le := func(b []byte) []byte {
		c := append([]byte(nil), b...)
		for i, j := 0, len(c)-1; i < j; i, j = i+1, j-1 {
			c[i], c[j] = c[j], c[i]
		}
		return c
	}
	s := new(big.Int).SetBytes(le(sig[32:]))
	s.Add(s, ed25519L)
	sBig := make([]byte, 32)
	s.FillBytes(sBig)
	malleable := append(append([]byte(nil), sig[:32]...), le(sBig)...)

	otherName := map[string]string{"EdDSA": "Ed25519", "Ed25519": "EdDSA"}[alg]
	return []diffCase{
		{"63-byte signature", alg, "ed25519", withSig(tok, sig[:63]), false},
		{"non-canonical S (S+L)", alg, "ed25519", withSig(tok, malleable), false},
		// Verify does not read the header; the header/alg match is the
		// caller's rule. jwx's default (no WithAlgorithmMatch) agrees.
		{"token with header alg " + alg + " verified as " + otherName, otherName, "ed25519", tok, true},
		{"verified with a P-256 key", alg, "p256", tok, false},
		{"verified with an RSA key", alg, "rsa2048", tok, false},
	}
}

// differentialCases builds the hand-made table. Tokens are signed afresh on
// each run (ECDSA and PSS are randomized); keys are fixed.
func differentialCases(t testing.TB) []diffCase {
	var cases []diffCase
	for _, alg := range Algorithms {
		k := keyFor(alg)
		tok := token(t, alg, k)
		sig := sigOf(t, tok)
		in, _ := split(tok)
		cases = append(cases,
			diffCase{"valid", alg, k, tok, true},
			diffCase{"payload bit flipped", alg, k, flipPayloadBit(t, tok), false},
			diffCase{"signature bit flipped", alg, k, withSig(tok, flipBit(sig, len(sig)/2)), false},
			diffCase{"signature first bit flipped", alg, k, withSig(tok, flipBit(sig, 0)), false},
			diffCase{"signature truncated by a byte", alg, k, withSig(tok, sig[:len(sig)-1]), false},
			diffCase{"signature extended by a byte", alg, k, withSig(tok, append(append([]byte(nil), sig...), 0)), false},
			diffCase{"empty signature", alg, k, in + ".", false},
			diffCase{"wrong key of the right type", alg, otherKeyFor(alg), tok, false},
		)
		var extra []diffCase
		switch alg[:2] {
		case "ES":
			extra = ecdsaCases(t, alg)
		case "RS", "PS":
			extra = rsaCases(t, alg)
		default:
			extra = eddsaCases(t, alg)
		}
		cases = append(cases, extra...)
	}
	return cases
}

func TestVerifyDifferential(t *testing.T) {
	for _, tc := range differentialCases(t) {
		t.Run(tc.alg+"/"+tc.name, func(t *testing.T) {
			ours, theirs := compare(t, tc.alg, pub(t, tc.key), tc.tok)
			if got := ours == nil; got != tc.want {
				t.Errorf("ours: accepted=%v, want %v (err %v)", got, tc.want, ours)
			}
			if jwxVerify == nil {
				return // our side only; see needJWX
			}
			if got := theirs == nil; got != tc.want {
				t.Errorf("jwx: accepted=%v, want %v (err %v)", got, tc.want, theirs)
			}
		})
	}
}

// knownDifference is a token on which our verdict and jwx's differ by
// design. All are "we reject, jwx accepts".
type knownDifference struct {
	name, alg, key, tok string
	ourErr              error // what our side returns
	why                 string
}

func knownDifferences(t testing.TB) []knownDifference {
	in256 := signingInputFor("ES256")
	in512 := signingInputFor("ES512")
	valid := token(t, "ES256", "p256")
	validIn, validSig := split(valid)
	// A signature whose base64url text has '-' or '_', so that the
	// standard alphabet spells it differently.
	for !strings.ContainsAny(validSig, "-_") {
		valid = token(t, "ES256", "p256")
		validIn, validSig = split(valid)
	}
	sig := sigOf(t, valid)
	mid := len(validSig) / 2
	return []knownDifference{
		{"RS256 with a 1024-bit RSA key", "RS256", "rsa1024", token(t, "RS256", "rsa1024"), ErrKeyMismatch,
			"MinRSABits = 2048 (RFC 7518 §3.3); jwx v3 and crypto/rsa accept 1024 bits"},
		{"PS256 with a 1024-bit RSA key", "PS256", "rsa1024", token(t, "PS256", "rsa1024"), ErrKeyMismatch,
			"MinRSABits = 2048 (RFC 7518 §3.3)"},
		{"ES256 signed and verified with a P-384 key", "ES256", "p384",
			in256 + "." + b64.EncodeToString(rawSign(t, "ES256", priv(t, "p384"), []byte(in256))), ErrKeyMismatch,
			"RFC 7518 §3.4 binds ES256 to P-256; jwx v3 never reads the curve of a raw *ecdsa.PublicKey"},
		{"ES512 signed and verified with a P-256 key", "ES512", "p256",
			in512 + "." + b64.EncodeToString(rawSign(t, "ES512", priv(t, "p256"), []byte(in512))), ErrKeyMismatch,
			"RFC 7518 §3.4 binds ES512 to P-521"},
		{"signature part padded with '='", "ES256", "p256", validIn + "." + base64.URLEncoding.EncodeToString(sig), errEncoding,
			"RFC 7515 §2 base64url has no padding; jwx guesses the encoding"},
		{"signature part in the standard alphabet", "ES256", "p256", validIn + "." + base64.RawStdEncoding.EncodeToString(sig), errEncoding,
			"jwx guesses the alphabet"},
		{"LF inside the signature part", "ES256", "p256", validIn + "." + validSig[:mid] + "\n" + validSig[mid:], errEncoding,
			"encoding/base64 skips CR/LF even in Strict mode; jwx relies on that"},
		{"CR LF inside the payload part", "ES256", "p256", reencodeSigned(t, valid, func(h, p string) (string, string) { return h, p[:5] + "\r\n" + p[5:] }), errEncoding,
			"jwx decodes the payload and re-encodes it for the signing input"},
		{"non-zero trailing bits in the signature part", "ES256", "p256", validIn + "." + dirtyTrailingBits(validSig), errEncoding,
			"jwx decodes without Strict"},
	}
}

// reencodeSigned edits the header and payload text of a valid token with f,
// keeping the signature.
func reencodeSigned(t testing.TB, tok string, f func(h, p string) (string, string)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	parts[0], parts[1] = f(parts[0], parts[1])
	return strings.Join(parts, ".")
}

// dirtyTrailingBits sets an unused low bit of the last base64url character
// of s (which encodes a length that is not a multiple of 3), so that the
// text decodes to the same bytes but is not canonical.
func dirtyTrailingBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[i|1])
}

// TestVerifyDifferentialKnownDifferences pins every case where our verdict
// and jwx's differ. A change on either side fails here, so the list stays
// true.
func TestVerifyDifferentialKnownDifferences(t *testing.T) {
	for _, c := range knownDifferences(t) {
		t.Run(c.name, func(t *testing.T) {
			key := pub(t, c.key)
			if ours := ourVerify(c.alg, key, c.tok); !errors.Is(ours, c.ourErr) {
				t.Errorf("ours = %v, want %v", ours, c.ourErr)
			}
			needJWX(t)
			if theirs := jwxVerify(c.alg, key, c.tok); theirs != nil {
				t.Errorf("jwx now rejects (%v): the difference (%s) is gone; update this test", theirs, c.why)
			}
			compare(t, c.alg, key, c.tok) // the differential helper must tolerate it
		})
	}
	// A header jwx refuses to parse ("jwk" must be a JSON object) over a
	// valid signature: Verify never reads the header, so it accepts; the
	// header rules (ignore jwk/jku/x5u, crit, typ) live with the caller.
	t.Run("header jwx cannot parse, valid signature", func(t *testing.T) {
		in := b64.EncodeToString([]byte(`{"alg":"ES256","jwk":5}`)) + "." + b64.EncodeToString([]byte(`{"sub":"alice"}`))
		tok := in + "." + b64.EncodeToString(rawSign(t, "ES256", priv(t, "p256"), []byte(in)))
		key := pub(t, "p256")
		if err := ourVerify("ES256", key, tok); err != nil {
			t.Errorf("ours = %v, want nil (Verify checks the signature only)", err)
		}
		needJWX(t)
		if err := jwxVerify("ES256", key, tok); err == nil {
			t.Errorf("jwx accepted a header with \"jwk\":5")
		}
	})
}

// fuzzFamily restricts FuzzVerifyDifferential to algs starting with this
// prefix (RS, PS, ES, Ed), to spend a fuzzing session on one family:
//
//	go test -run='^$' -fuzz=FuzzVerifyDifferential -fuzztime=60s ./internal/jws/ -args -fuzzfamily=ES
var fuzzFamily = flag.String("fuzzfamily", "", "FuzzVerifyDifferential: only algs with this prefix")

// FuzzVerifyDifferential mutates (alg, key index, token) and requires our
// verdict to equal jwx's, outside the documented differences.
func FuzzVerifyDifferential(f *testing.F) {
	for _, tc := range differentialCases(f) {
		f.Add(tc.alg, keyIndex(f, tc.key), tc.tok)
	}
	for _, kd := range knownDifferences(f) {
		f.Add(kd.alg, keyIndex(f, kd.key), kd.tok)
	}
	f.Fuzz(func(t *testing.T, alg string, keyIdx uint8, tok string) {
		if *fuzzFamily != "" && !strings.HasPrefix(alg, *fuzzFamily) {
			return
		}
		key := pub(t, keyNames[int(keyIdx)%len(keyNames)])
		if !Supported(alg) {
			if err := ourVerify(alg, key, tok); err != nil && !errors.Is(err, errEncoding) && !errors.Is(err, ErrAlgorithm) {
				t.Fatalf("unsupported alg %q: got %v, want ErrAlgorithm", alg, err)
			} else if err == nil {
				t.Fatalf("unsupported alg %q verified", alg)
			}
			return
		}
		compare(t, alg, key, tok)
	})
}
