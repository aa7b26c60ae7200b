package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A small signer of DPoP proofs with the test keys, independent of the
// package's own encoding code (it must not import oauthtest: that imports
// the root package, which will import this one).

var b64 = base64.RawURLEncoding

const (
	testMethod = "POST"
	testURL    = "https://rs.example/api/orders"
	testToken  = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
)

var testNow = time.Unix(1_800_000_000, 0)

// testOptions are the options every valid test proof meets.
func testOptions() Options {
	return Options{Method: testMethod, URL: testURL, AccessToken: testToken, Now: testNow}
}

var (
	keysMu sync.Mutex
	keys   = map[string]crypto.Signer{}
)

// priv loads a PKCS#8 PEM key from testdata/keys (see its README).
func priv(t testing.TB, name string) crypto.Signer {
	t.Helper()
	k, err := loadKey(name)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// key is priv for the closures of attack tables, which run in subtests
// whose t they do not have: a missing fixture panics.
func key(name string) crypto.Signer {
	k, err := loadKey(name)
	if err != nil {
		panic(err)
	}
	return k
}

func loadKey(name string) (crypto.Signer, error) {
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[name]; ok {
		return k, nil
	}
	b, err := os.ReadFile(filepath.Join("testdata", "keys", name+".pem"))
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	keys[name] = k.(crypto.Signer)
	return keys[name], nil
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

// jwkOf is the public JWK of pub, written out member by member.
func jwkOf(pub crypto.PublicKey) map[string]any {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "n": b64.EncodeToString(k.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		return map[string]any{
			"kty": "EC", "crv": k.Curve.Params().Name,
			"x": b64.EncodeToString(k.X.FillBytes(make([]byte, size))),
			"y": b64.EncodeToString(k.Y.FillBytes(make([]byte, size))),
		}
	case ed25519.PublicKey:
		return map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(k)}
	}
	panic("jwkOf: unsupported key")
}

func athOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64.EncodeToString(sum[:])
}

// rawSign signs input under alg's hash and padding with any private key,
// without checking that the key suits alg.
func rawSign(t testing.TB, alg string, k crypto.Signer, input []byte) []byte {
	t.Helper()
	var h crypto.Hash
	switch alg[len(alg)-3:] {
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	default:
		h = crypto.SHA256
	}
	digest := func() []byte {
		switch h {
		case crypto.SHA384:
			d := sha512.Sum384(input)
			return d[:]
		case crypto.SHA512:
			d := sha512.Sum512(input)
			return d[:]
		}
		d := sha256.Sum256(input)
		return d[:]
	}
	if strings.HasPrefix(alg, "HS") {
		// HMAC keyed with the public key's DER: the alg confusion attack.
		der, err := x509.MarshalPKIXPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, der)
		m.Write(input)
		return m.Sum(nil)
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input)
	case *rsa.PrivateKey:
		var sig []byte
		var err error
		if alg[0] == 'P' {
			sig, err = rsa.SignPSS(rand.Reader, k, h, digest(), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
		} else {
			sig, err = rsa.SignPKCS1v15(nil, k, h, digest())
		}
		if err != nil {
			t.Fatalf("rsa sign: %v", err)
		}
		return sig
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest())
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

// spec is a proof to mint: header and claims as maps, optionally edited
// as JSON text before signing (for what a map cannot say: duplicate
// names, raw bytes), signed by signer under alg.
type spec struct {
	alg        string
	signer     crypto.Signer
	header     map[string]any
	claims     map[string]any
	editHeader func(string) string
	editClaims func(string) string
}

// newSpec is a valid proof for testOptions, signed under alg.
func newSpec(t testing.TB, alg string) *spec {
	t.Helper()
	k := priv(t, keyFor(alg))
	return &spec{
		alg:    alg,
		signer: k,
		header: map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": jwkOf(k.Public())},
		claims: map[string]any{
			"jti": "e1j3V_bKic8-LAEB",
			"htm": testMethod,
			"htu": testURL,
			"iat": testNow.Unix(),
			"ath": athOf(testToken),
		},
	}
}

func (s *spec) jwk() map[string]any { return s.header["jwk"].(map[string]any) }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mint returns the compact JWS.
func (s *spec) mint(t testing.TB) string {
	t.Helper()
	h, c := mustJSON(t, s.header), mustJSON(t, s.claims)
	if s.editHeader != nil {
		h = s.editHeader(h)
	}
	if s.editClaims != nil {
		c = s.editClaims(c)
	}
	in := b64.EncodeToString([]byte(h)) + "." + b64.EncodeToString([]byte(c))
	return in + "." + b64.EncodeToString(rawSign(t, s.alg, s.signer, []byte(in)))
}

// prepend inserts text right after an object's opening brace.
func prepend(text string) func(string) string {
	return func(j string) string { return "{" + text + "," + j[1:] }
}

// replace replaces old with new once. It panics when old is absent (a
// broken test, not a finding): it runs inside subtests, whose own t it
// does not have.
func replace(old, new string) func(string) string {
	return func(j string) string {
		if !strings.Contains(j, old) {
			panic(fmt.Sprintf("%q not in %s", old, j))
		}
		return strings.Replace(j, old, new, 1)
	}
}

// wantCode checks that err is an error of the category code.
func wantCode(t testing.TB, err error, code, why string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %s (%s)", code, why)
	}
	if got := Code(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
	if testing.Verbose() {
		t.Log(err)
	}
	if why != "" && !strings.Contains(err.Error(), why) {
		t.Fatalf("error %q does not say %q", err, why)
	}
}

// oneOf reports whether err wraps exactly one of the three categories.
func oneOf(err error) bool {
	n := 0
	for _, e := range []error{ErrInvalidProof, ErrUseNonce, ErrOptions} {
		if errors.Is(err, e) {
			n++
		}
	}
	return n == 1
}
