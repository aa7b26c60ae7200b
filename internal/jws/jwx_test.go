// The jwx side of the differential tests: jwx v3's own verdict on every
// token the table and the fuzzer produce.

package jws

import (
	"crypto"
	"fmt"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	jwxjws "github.com/lestrrat-go/jwx/v3/jws"
)

func init() {
	jwxVerify = func(alg string, key crypto.PublicKey, tok string) (err error) {
		a, ok := jwa.LookupSignatureAlgorithm(alg)
		if !ok {
			return fmt.Errorf("jwx does not know alg %q", alg)
		}
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: %v", errJWXPanic, r)
			}
		}()
		// Compact only (jws.Verify would otherwise also take the JSON
		// serialization); default options, so jwx verifies under the alg
		// given here and, like Verify, does not compare it with the header.
		_, err = jwxjws.Verify([]byte(tok), jwxjws.WithCompact(), jwxjws.WithKey(a, key))
		return err
	}
}

// TestVerifyAlgorithmsKnownToJWX: every alg we verify is a jwx v3
// signature algorithm under the same name, including RFC 9864's "Ed25519"
// (jwa.EdDSAEd25519 in v3.4.0) next to the deprecated polymorphic "EdDSA".
func TestVerifyAlgorithmsKnownToJWX(t *testing.T) {
	for _, alg := range Algorithms {
		a, ok := jwa.LookupSignatureAlgorithm(alg)
		if !ok {
			t.Errorf("jwx v3 does not know %q", alg)
			continue
		}
		if a.String() != alg || a.IsSymmetric() {
			t.Errorf("jwx maps %q to %q (symmetric %v)", alg, a, a.IsSymmetric())
		}
	}
	if jwa.EdDSAEd25519().String() != "Ed25519" || jwa.EdDSA().String() != "EdDSA" {
		t.Errorf("jwx names: %q %q", jwa.EdDSAEd25519(), jwa.EdDSA())
	}
}

// TestVerifyTokensSignedByJWX: what jwx signs, we verify (and a flipped
// bit is refused), so our r||s and PSS conventions match jwx's signer.
func TestVerifyTokensSignedByJWX(t *testing.T) {
	payload := []byte(`{"sub":"alice"}`)
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			a, _ := jwa.LookupSignatureAlgorithm(alg)
			signed, err := jwxjws.Sign(payload, jwxjws.WithKey(a, priv(t, keyFor(alg))))
			if err != nil {
				t.Fatalf("jwx sign: %v", err)
			}
			tok := string(signed)
			key := pub(t, keyFor(alg))
			if ours, _ := compare(t, alg, key, tok); ours != nil {
				t.Fatalf("we reject a jwx-signed %s token: %v", alg, ours)
			}
			bad := withSig(tok, flipBit(sigOf(t, tok), 3))
			if ours, _ := compare(t, alg, key, bad); ours == nil {
				t.Fatalf("we accept a corrupted jwx-signed %s token", alg)
			}
		})
	}
}
