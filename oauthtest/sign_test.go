package oauthtest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"sync"
	"testing"

	"github.com/tokenguard/tokenguard/oauthtest"
)

// Keys shared by the SignJWT tests, generated once.
var testKeys = sync.OnceValue(func() map[string]crypto.Signer {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	keys := map[string]crypto.Signer{"RSA": rsaKey}
	for name, curve := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			panic(err)
		}
		keys[name] = k
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	keys["Ed25519"] = ed
	return keys
})

func TestSignJWT(t *testing.T) {
	tests := []struct {
		alg, key string
		sigLen   int
	}{
		{"RS256", "RSA", 256},
		{"RS384", "RSA", 256},
		{"RS512", "RSA", 256},
		{"PS256", "RSA", 256},
		{"PS384", "RSA", 256},
		{"PS512", "RSA", 256},
		{"ES256", "P-256", 64},
		{"ES384", "P-384", 96},
		{"ES512", "P-521", 132},
		{"EdDSA", "Ed25519", 64},
	}
	for _, tc := range tests {
		t.Run(tc.alg, func(t *testing.T) {
			key := testKeys()[tc.key]
			header := map[string]any{"alg": tc.alg, "kid": "k1", "x": "<&>"}
			claims := map[string]any{"sub": "alice", "n": 1}
			tok, err := oauthtest.SignJWT(header, claims, key, tc.alg)
			if err != nil {
				t.Fatal(err)
			}
			h, c, parts := splitJWS(t, tok)
			// The header is exactly what was given: nothing added, keys sorted,
			// no HTML escaping.
			raw, _ := b64.DecodeString(parts[0])
			if want := `{"alg":"` + tc.alg + `","kid":"k1","x":"<&>"}`; string(raw) != want {
				t.Errorf("header = %s, want %s", raw, want)
			}
			if len(h) != 3 || c["sub"] != "alice" || len(c) != 2 {
				t.Errorf("header %v claims %v", h, c)
			}
			sig, err := b64.DecodeString(parts[2])
			if err != nil {
				t.Fatal(err)
			}
			if len(sig) != tc.sigLen {
				t.Errorf("signature is %d bytes, want %d", len(sig), tc.sigLen)
			}
			if err := verifySignature(key.Public(), tc.alg, parts[0]+"."+parts[1], sig); err != nil {
				t.Fatal(err)
			}
			// A changed payload must not verify.
			if err := verifySignature(key.Public(), tc.alg, parts[0]+"."+parts[0], sig); err == nil {
				t.Error("signature verifies over a different input")
			}
		})
	}
}

func TestSignJWTNone(t *testing.T) {
	tok, err := oauthtest.SignJWT(map[string]any{"alg": "none"}, nil, nil, "none")
	if err != nil {
		t.Fatal(err)
	}
	// {"alg":"none"} . {} . (empty)
	if want := "eyJhbGciOiJub25lIn0.e30."; tok != want {
		t.Errorf("token = %q, want %q", tok, want)
	}
}

func TestSignJWTErrors(t *testing.T) {
	keys := testKeys()
	tests := []struct {
		name string
		key  crypto.Signer
		alg  string
		want string
	}{
		{"RSA alg, EC key", keys["P-256"], "RS256", "needs an RSA key"},
		{"PSS alg, Ed25519 key", keys["Ed25519"], "PS256", "needs an RSA key"},
		{"ES256, P-384 key", keys["P-384"], "ES256", "on P-256"},
		{"ES384, RSA key", keys["RSA"], "ES384", "needs an ECDSA key"},
		{"EdDSA, RSA key", keys["RSA"], "EdDSA", "needs an Ed25519 key"},
		{"HS256 unsupported", keys["RSA"], "HS256", "unsupported algorithm"},
		{"empty alg", keys["RSA"], "", "unsupported algorithm"},
		{"none with a key", keys["RSA"], "none", `"none" takes a nil key`},
		{"nil key", nil, "RS256", "nil key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := oauthtest.SignJWT(map[string]any{"alg": tc.alg}, nil, tc.key, tc.alg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SignJWT = %q, %v; want error containing %q", tok, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "oauthtest: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	if _, err := oauthtest.SignJWT(map[string]any{"bad": func() {}}, nil, keys["RSA"], "RS256"); err == nil {
		t.Error("a header that cannot be encoded was accepted")
	}
}
