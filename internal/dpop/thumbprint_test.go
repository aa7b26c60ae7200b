package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"testing"
)

// RFC 7638 §3.1: the example key and its thumbprint.
const (
	rfc7638N          = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
	rfc7638Thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
)

func TestThumbprintRFC7638Example(t *testing.T) {
	n, err := b64.DecodeString(rfc7638N)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Thumbprint(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	if got != rfc7638Thumbprint {
		t.Errorf("Thumbprint = %s, want %s", got, rfc7638Thumbprint)
	}
}

// The example key in a proof's header: the thumbprint Verify returns is
// the RFC's, whatever optional members the JWK has (kid, alg, use). The
// proof cannot be signed (the RFC's private key is not used here), so
// the key is checked through publicKey, the step Verify uses.
func TestThumbprintOfTheRFC7638JWKInAProof(t *testing.T) {
	jwk := `{"kty":"RSA","n":"` + rfc7638N + `","e":"AQAB","alg":"RS256","kid":"2011-04-29","use":"sig"}`
	_, tp, err := publicKey([]byte(jwk), "RS256")
	if err != nil {
		t.Fatal(err)
	}
	if tp != rfc7638Thumbprint {
		t.Errorf("thumbprint = %s, want %s", tp, rfc7638Thumbprint)
	}
}

// Our thumbprints agree with jwx's for every key type.
func TestThumbprintMatchesJWX(t *testing.T) {
	for _, name := range []string{"rsa2048", "p256", "p384", "p521", "ed25519"} {
		pub := priv(t, name).Public()
		got, err := Thumbprint(pub)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := jwxThumbprint(t, pub); got != want {
			t.Errorf("%s: Thumbprint = %s, jwx says %s", name, got, want)
		}
	}
}

// Coordinates with leading zero bytes are written at the curve's full
// size (RFC 7518 §6.2.1.2), as jwx does.
func TestThumbprintPadsSmallCoordinates(t *testing.T) {
	var pub *ecdsa.PublicKey
	for i := 0; pub == nil || pub.X.BitLen() > 248; i++ {
		if i > 100000 {
			t.Fatal("no key with a small x in 100000")
		}
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pub = &k.PublicKey
	}
	got, err := Thumbprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := jwxThumbprint(t, pub); got != want {
		t.Errorf("Thumbprint = %s, jwx says %s", got, want)
	}
}

func TestThumbprintRefusesOtherKeys(t *testing.T) {
	for _, k := range []any{
		nil, "key", &rsa.PublicKey{}, (*rsa.PublicKey)(nil), &ecdsa.PublicKey{}, (*ecdsa.PublicKey)(nil),
		&ecdsa.PublicKey{Curve: elliptic.P224(), X: big.NewInt(1), Y: big.NewInt(1)},
		[]byte{1, 2, 3}, ed25519.PublicKey{1, 2, 3},
	} {
		if tp, err := Thumbprint(k); err == nil {
			t.Errorf("Thumbprint(%T) = %s", k, tp)
		}
	}
}
