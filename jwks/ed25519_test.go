package jwks

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	ijws "github.com/tokenguard/tokenguard/internal/jws"
)

// edEncoding is the RFC 8032 encoding of y (taken as is, even when not
// reduced) with x's sign bit.
func edEncoding(y *big.Int, negX bool) []byte {
	be := y.FillBytes(make([]byte, 32))
	enc := make([]byte, 32)
	for i, b := range be {
		enc[31-i] = b
	}
	if negX {
		enc[31] |= 0x80
	}
	return enc
}

func okpJWK(pub []byte, members map[string]any) map[string]any {
	m := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(pub)}
	for name, v := range members {
		m[name] = v
	}
	return m
}

type smallOrderKey struct {
	name  string
	enc   []byte
	order int
	// reason is what the refusal must mention.
	reason string
}

// smallOrderKeys lists every encoding that edwards25519 (and so
// crypto/ed25519) decodes to one of the 8 points of small order: the 8
// canonical ones and the 6 that RFC 8032 rejects but Go accepts (y + p where
// that still fits in 255 bits, and x = 0 with the sign bit set).
func smallOrderKeys(t testing.TB) []smallOrderKey {
	// The y of the points of order 8, a published constant (little-endian);
	// the test of forgeries below proves it is one.
	y8le, err := hex.DecodeString("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
	if err != nil {
		t.Fatal(err)
	}
	y8 := new(big.Int).SetBytes(reverse(y8le))
	p := edP
	minus := func(y *big.Int) *big.Int { return new(big.Int).Sub(p, y) }
	plusP := func(y *big.Int) *big.Int { return new(big.Int).Add(p, y) }
	one, zero := big.NewInt(1), big.NewInt(0)
	const small, sign, over = "small order", "sign bit", "2^255-19"
	var out []smallOrderKey
	add := func(name string, y *big.Int, negX bool, order int, reason string) {
		if reason == small {
			reason = fmt.Sprintf("small order %d", order)
		}
		out = append(out, smallOrderKey{name, edEncoding(y, negX), order, reason})
	}
	add("identity (0, 1)", one, false, 1, small)
	add("identity, x sign set", one, true, 1, sign)
	add("identity, y = p+1", plusP(one), false, 1, over)
	add("identity, y = p+1, x sign set", plusP(one), true, 1, over)
	add("order 2 (0, -1)", minus(one), false, 2, small)
	add("order 2, x sign set", minus(one), true, 2, sign)
	add("order 4, y = 0", zero, false, 4, small)
	add("order 4, y = 0, x negative", zero, true, 4, small)
	add("order 4, y = p", p, false, 4, over)
	add("order 4, y = p, x sign set", p, true, 4, over)
	add("order 8, y8", y8, false, 8, small)
	add("order 8, y8, x negative", y8, true, 8, small)
	add("order 8, -y8", minus(y8), false, 8, small)
	add("order 8, -y8, x negative", minus(y8), true, 8, small)
	return out
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(b)-1-i] = c
	}
	return r
}

// parseOne parses a set holding bad beside a good Ed25519 key and returns
// the reason bad was skipped.
func parseOne(t *testing.T, bad map[string]any) string {
	t.Helper()
	goodPub, _, _ := ed25519.GenerateKey(rand.Reader)
	bad["kid"] = "bad"
	doc, _ := json.Marshal(map[string]any{"keys": []any{bad, okpJWK(goodPub, map[string]any{"kid": "good"})}})
	keys, skipped, err := Parse(doc, 0)
	if err != nil {
		t.Fatalf("the whole set failed: %v", err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	if len(ids) != 1 || ids[0] != "good" {
		t.Errorf("kept %q, want only the good key", ids)
	}
	if len(skipped) != 1 || skipped[0].ID != "bad" {
		t.Fatalf("skipped %v, want the bad key", skipped)
	}
	return skipped[0].Reason
}

func TestEd25519SmallOrderKeysRefused(t *testing.T) {
	keys := smallOrderKeys(t)
	seen := map[string]bool{}
	for _, k := range keys {
		seen[string(k.enc)] = true
	}
	if len(keys) != 14 || len(seen) != 14 {
		t.Fatalf("%d encodings, %d distinct, want 14", len(keys), len(seen))
	}
	for _, k := range keys {
		t.Run(k.name, func(t *testing.T) {
			reason := parseOne(t, okpJWK(k.enc, map[string]any{"alg": "EdDSA"}))
			if !strings.Contains(reason, k.reason) || !strings.HasPrefix(reason, "Ed25519 public key") {
				t.Errorf("reason %q, want it to say %q", reason, k.reason)
			}
		})
	}
}

// Every encoding with y >= p, and x = 0 with the sign bit set: refused as
// not canonical whatever point they decode to (Go decodes all but the
// off-curve ones).
func TestEd25519NonCanonicalKeysRefused(t *testing.T) {
	limit := new(big.Int).Lsh(big.NewInt(1), 255)
	n := 0
	for y := new(big.Int).Set(edP); y.Cmp(limit) < 0; y.Add(y, big.NewInt(1)) {
		for _, negX := range []bool{false, true} {
			enc := edEncoding(y, negX)
			if got := ed25519Flaw(enc); !strings.Contains(got, "y is not below 2^255-19") {
				t.Errorf("y = p+%d, negative x %v: %q", new(big.Int).Sub(y, edP), negX, got)
			}
			n++
		}
	}
	if n != 38 {
		t.Errorf("%d encodings with y >= p, want 38", n)
	}
	for _, y := range []*big.Int{big.NewInt(1), new(big.Int).Sub(edP, big.NewInt(1))} {
		if got := ed25519Flaw(edEncoding(y, true)); !strings.Contains(got, "x is 0 with its sign bit set") {
			t.Errorf("y = %v with x's sign bit: %q", y, got)
		}
	}
	// Through Parse, an encoding whose reduced point is an ordinary one:
	// only the encoding is wrong.
	for k := int64(2); k < 19; k++ {
		y := big.NewInt(k)
		if edXX(y) == nil || ed25519Flaw(edEncoding(y, false)) != "" {
			continue
		}
		reason := parseOne(t, okpJWK(edEncoding(new(big.Int).Add(edP, y), false), nil))
		if !strings.Contains(reason, "not canonical") {
			t.Errorf("y = p+%d: reason %q", k, reason)
		}
		return
	}
	t.Error("no ordinary point with y < 19")
}

// Off-curve encodings are refused exactly when crypto/ed25519 cannot decode
// them ("bad public key", not "invalid signature").
func TestEd25519OffCurveKeysRefused(t *testing.T) {
	sig := make([]byte, ed25519.SignatureSize)
	off := 0
	var firstOff []byte
	for k := range int64(400) {
		for _, negX := range []bool{false, true} {
			enc := edEncoding(big.NewInt(k), negX)
			err := ed25519.VerifyWithOptions(enc, []byte("m"), sig, &ed25519.Options{})
			goRejects := err != nil && strings.Contains(err.Error(), "bad public key")
			flaw := ed25519Flaw(enc)
			if weRefuse := strings.Contains(flaw, "not a point on the curve"); weRefuse != goRejects {
				t.Errorf("y = %d, negative x %v: crypto/ed25519 says %v, we say %q", k, negX, err, flaw)
			}
			if goRejects {
				off++
				if firstOff == nil {
					firstOff = enc
				}
			}
		}
	}
	if off < 200 || off > 600 {
		t.Errorf("%d of 800 encodings off the curve, want about half", off)
	}
	if reason := parseOne(t, okpJWK(firstOff, nil)); !strings.Contains(reason, "not a point on the curve") {
		t.Errorf("off-curve key %x: reason %q", firstOff, reason)
	}
}

func TestEd25519RealKeysAccepted(t *testing.T) {
	const docs, perDoc = 20, 50
	for range docs {
		var jwks []any
		var pubs []ed25519.PublicKey
		for i := range perDoc {
			pub, _, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			pubs = append(pubs, pub)
			jwks = append(jwks, okpJWK(pub, map[string]any{"kid": fmt.Sprint(i), "alg": "EdDSA"}))
		}
		doc, _ := json.Marshal(map[string]any{"keys": jwks})
		keys, skipped, err := Parse(doc, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(skipped) != 0 || len(keys) != perDoc {
			t.Fatalf("kept %d of %d real keys, skipped %v", len(keys), perDoc, skipped)
		}
		for i, k := range keys {
			if !bytes.Equal(k.Public.(ed25519.PublicKey), pubs[i]) {
				t.Fatalf("key %d changed in parsing", i)
			}
		}
	}
}

// x25519Torsion is the check the refusal could have used, as an independent
// oracle: u = (1+y)/(1-y) is the point's Montgomery coordinate (y = 1, the
// identity, has none), and X25519 multiplies by a clamped scalar, 8 times a
// number in [2^251, 2^252) below the prime order L. The result is the
// identity or (0, 0), which crypto/ecdh refuses as all zeros, exactly when
// the point's order divides 8. y must be reduced and on the curve.
func x25519Torsion(t testing.TB, y *big.Int) bool {
	if y.Cmp(big.NewInt(1)) == 0 {
		return true
	}
	num := new(big.Int).Add(big.NewInt(1), y)
	den := new(big.Int).Sub(big.NewInt(1), y)
	den.ModInverse(den.Mod(den, edP), edP)
	u := num.Mul(num, den)
	u.Mod(u, edP)
	peer, err := ecdh.X25519().NewPublicKey(reverse(u.FillBytes(make([]byte, 32))))
	if err != nil {
		t.Fatal(err)
	}
	_, err = x25519Scalar(t).ECDH(peer)
	return err != nil
}

var x25519Once = sync.OnceValues(func() (*ecdh.PrivateKey, error) { return ecdh.X25519().GenerateKey(rand.Reader) })

func x25519Scalar(t testing.TB) *ecdh.PrivateKey {
	k, err := x25519Once()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The order check and the X25519 oracle agree on the small-order points,
// on real keys (order L) and on random points of the curve (seven in eight
// of mixed order: a torsion component beside one of order L, which must not
// be taken for small order).
func TestEd25519OrderCheckAgreesWithX25519(t *testing.T) {
	check := func(name string, y *big.Int) {
		t.Helper()
		flaw := ed25519Flaw(edEncoding(y, false))
		if ours, theirs := strings.Contains(flaw, "small order"), x25519Torsion(t, y); ours != theirs {
			t.Errorf("%s: we say %q, X25519 says small order %v", name, flaw, theirs)
		}
	}
	for _, k := range smallOrderKeys(t) {
		y := new(big.Int).SetBytes(reverse(k.enc))
		y.SetBit(y, 255, 0)
		if !x25519Torsion(t, y.Mod(y, edP)) {
			t.Errorf("%s: X25519 says not small order", k.name)
		}
		check(k.name, y)
	}
	for i := range 200 {
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		y := new(big.Int).SetBytes(reverse(pub))
		check(fmt.Sprintf("real key %d", i), y.SetBit(y, 255, 0))
	}
	for found := 0; found < 200; {
		b := make([]byte, 32)
		rand.Read(b)
		y := new(big.Int).SetBytes(b)
		y.Mod(y, edP)
		if edXX(y) == nil {
			continue
		}
		found++
		check(fmt.Sprintf("random point y = %x", b), y)
	}
}

func TestEd25519CurveConstant(t *testing.T) {
	// RFC 8032 §5.1: d = 37095705934669439343138083508754565189542113879843219016388785533085940283555.
	want, _ := new(big.Int).SetString("37095705934669439343138083508754565189542113879843219016388785533085940283555", 10)
	if edD.Cmp(want) != 0 {
		t.Errorf("d = %v", edD)
	}
}

// forge finds a token that crypto/ed25519.Verify accepts under pub with the
// signature R = identity, S = 0, without any private key: it varies the jti
// until k = SHA-512(R || pub || M) mod L is a multiple of pub's order.
func forge(t *testing.T, pub []byte) (signingInput, sig []byte) {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	sig = append(edEncoding(big.NewInt(1), false), make([]byte, 32)...)
	header := b64([]byte(`{"alg":"EdDSA","typ":"at+jwt"}`))
	for i := range 256 {
		payload := b64(fmt.Appendf(nil, `{"iss":"https://as.example","sub":"admin","aud":"api","exp":4102444800,"jti":"forged-%d"}`, i))
		in := []byte(header + "." + payload)
		if ed25519.Verify(pub, in, sig) {
			return in, sig
		}
	}
	t.Fatalf("no forgery in 256 tries for %x", pub)
	return nil, nil
}

// With a small-order key in the JWKS, a token "signed" with R = identity and
// S = 0 verifies (the demonstration below), and a token without kid is tried
// against every EdDSA key of the set. The set must not hand the key out.
func TestAttackSmallOrderEd25519KeyForgesTokens(t *testing.T) {
	goodPub, goodPriv, _ := ed25519.GenerateKey(rand.Reader)
	bad := smallOrderKeys(t)
	jwks := []map[string]any{}
	type forgery struct{ in, sig []byte }
	forged := map[string]forgery{}
	for _, k := range bad {
		in, sig := forge(t, k.enc)
		// Our own verification path accepts it too: the key is the only
		// line of defence.
		if err := ijws.Verify("EdDSA", ed25519.PublicKey(k.enc), in, sig); err != nil {
			t.Fatalf("%s: forgery verified by crypto/ed25519 but not by jws: %v", k.name, err)
		}
		if ed25519.Verify(goodPub, in, sig) {
			t.Fatalf("%s: the forgery verifies with a real key", k.name)
		}
		forged[k.name] = forgery{in, sig}
		members := map[string]any{"use": "sig"}
		if len(jwks)%2 == 0 {
			members["alg"] = "EdDSA"
		}
		jwks = append(jwks, okpJWK(k.enc, members))
	}
	jwks = append(jwks, okpJWK(goodPub, map[string]any{"kid": "good"}))
	jwks = append(jwks, okpJWK(bad[len(bad)-1].enc, map[string]any{"kid": "evil"}))

	var mu sync.Mutex
	var logged []string
	ks := newKeyServer(t, jwks...)
	s := newSet(t, ks.URL, Options{OnError: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, err.Error())
	}})

	for _, alg := range []string{"EdDSA", "Ed25519"} {
		keys, err := s.Lookup(t.Context(), "", alg)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		var ids []string
		for _, k := range keys {
			ids = append(ids, fmt.Sprintf("%q %x", k.ID, k.Public))
		}
		if len(keys) != 1 || keys[0].ID != "good" {
			t.Errorf("%s without kid: keys %s, want only the good one", alg, ids)
		}
		for name, f := range forged {
			for _, k := range keys {
				if ijws.Verify(alg, k.Public, f.in, f.sig) == nil {
					t.Errorf("%s: forged token (%s) verifies with key %q from the set", alg, name, k.ID)
				}
			}
		}
	}
	for _, k := range s.Keys() {
		if k.ID != "good" {
			t.Errorf("key %q in the set", k.ID)
		}
	}
	// A real token still verifies.
	in := []byte("eyJhbGciOiJFZERTQSJ9.e30")
	keys, _ := s.Lookup(t.Context(), "good", "EdDSA")
	if len(keys) != 1 || ijws.Verify("EdDSA", keys[0].Public, in, ed25519.Sign(goodPriv, in)) != nil {
		t.Error("the good key does not verify its own token")
	}
	mu.Lock()
	n := 0
	for _, msg := range logged {
		if strings.Contains(msg, "skipped key") && strings.Contains(msg, "Ed25519 public key") {
			n++
		}
	}
	if n != len(bad)+1 {
		t.Errorf("%d skipped keys reported, want %d: %q", n, len(bad)+1, logged)
	}
	mu.Unlock()
	// Naming the key does not bring it back, even after the refresh an
	// unknown kid causes.
	if _, err := s.Lookup(t.Context(), "evil", "EdDSA"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("kid evil: %v, want ErrUnknownKey", err)
	}
}
