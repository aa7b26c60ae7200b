package tokenguard_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// dpopBenchAlgs are the proof algorithms measured.
var dpopBenchAlgs = []string{"ES256", "EdDSA", "PS256", "RS256"}

// BenchmarkDPoP is one request with a cached DPoP-bound token and a fresh
// proof, per proof algorithm, beside its two baselines measured in the
// same run: "bearer", the same token cache hit as a plain Bearer token,
// and "proof-signature", the proof's signature check alone with the
// standard library. (dpop − bearer) / proof-signature is what checking a
// proof costs beyond its signature, as a ratio.
//
// Proofs are signed in batches with the timer stopped: each is accepted
// once (the replay store), so a fresh one is needed per request.
func BenchmarkDPoP(b *testing.B) {
	for _, alg := range dpopBenchAlgs {
		env := newBenchEnvWith(b, tokenguard.Config{DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: "https://api.example"}})
		key := oauthtest.NewDPoPKey(alg)
		bound := env.as.Mint(key.Bind(nil))
		plain := env.as.Mint(nil)
		url := "https://api.example/orders"

		b.Run(alg+"/bearer", func(b *testing.B) {
			r := httptest.NewRequest("GET", "/orders", nil)
			r.Header.Set("Authorization", "Bearer "+plain)
			if _, err := env.g.Authenticate(r); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := env.g.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/dpop", func(b *testing.B) {
			r := httptest.NewRequest("GET", "/orders", nil)
			r.Header.Set("Authorization", "DPoP "+bound)
			var batch []string
			refill := func() {
				batch = batch[:0]
				for range 256 {
					batch = append(batch, key.Proof("GET", url, bound))
				}
			}
			refill()
			r.Header["Dpop"] = []string{batch[0]}
			if _, err := env.g.Authenticate(r); err != nil {
				b.Fatal(err)
			}
			batch = batch[1:]
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if len(batch) == 0 {
					b.StopTimer()
					refill()
					b.StartTimer()
				}
				r.Header["Dpop"] = batch[:1:1]
				batch = batch[1:]
				if _, err := env.g.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(alg+"/proof-signature", func(b *testing.B) {
			proof := key.Proof("GET", url, bound)
			i := strings.LastIndexByte(proof, '.')
			input := []byte(proof[:i])
			sig, err := base64.RawURLEncoding.DecodeString(proof[i+1:])
			if err != nil {
				b.Fatal(err)
			}
			verify := signatureCheck(b, alg, key.Public())
			if !verify(input, sig) {
				b.Fatal("the proof's signature does not verify")
			}
			b.ReportAllocs()
			for b.Loop() {
				if !verify(input, sig) {
					b.Fatal("no longer verifies")
				}
			}
		})
	}
}

// signatureCheck verifies a JWS signature of alg with the standard
// library alone, hashing the signing input as a verifier must.
func signatureCheck(b *testing.B, alg string, pub crypto.PublicKey) func(input, sig []byte) bool {
	switch alg {
	case "ES256":
		k := pub.(*ecdsa.PublicKey)
		return func(input, sig []byte) bool {
			h := sha256.Sum256(input)
			return len(sig) == 64 && ecdsa.Verify(k, h[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
		}
	case "EdDSA":
		k := pub.(ed25519.PublicKey)
		return func(input, sig []byte) bool { return ed25519.Verify(k, input, sig) }
	case "PS256":
		k := pub.(*rsa.PublicKey)
		return func(input, sig []byte) bool {
			h := sha256.Sum256(input)
			return rsa.VerifyPSS(k, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
	case "RS256":
		k := pub.(*rsa.PublicKey)
		return func(input, sig []byte) bool {
			h := sha256.Sum256(input)
			return rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig) == nil
		}
	}
	b.Fatalf("no check for %s", alg)
	return nil
}
