package jwks

import (
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

// Keys a compromised or careless JWKS may carry. None may end up usable,
// none may panic, and the good key beside them keeps working.
func TestAttackDegenerateKeysSkipped(t *testing.T) {
	b64 := base64.RawURLEncoding.EncodeToString
	good := jwkJSON(t, &testRSAKey(t).PublicKey, map[string]any{"kid": "good", "alg": "RS256"})
	n := b64(testRSAKey(t).N.Bytes())
	odd := func(bits int) string {
		v := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		return b64(v.SetBit(v, 0, 1).Bytes())
	}
	bad := map[string]map[string]any{
		"e=1 (signature = message)": {"kty": "RSA", "n": n, "e": "AQ"},
		"e even":                    {"kty": "RSA", "n": n, "e": "Ag"},
		"e=0":                       {"kty": "RSA", "n": n, "e": "AA"},
		"e of 8000 bits":            {"kty": "RSA", "n": n, "e": b64([]byte(strings.Repeat("\xff", 1000)))},
		"modulus of 8193 bits":      {"kty": "RSA", "n": odd(8193), "e": "AQAB"},
		"modulus of 1 Mi bits":      {"kty": "RSA", "n": odd(1 << 20), "e": "AQAB"},
		"EC point off the curve":    {"kty": "EC", "crv": "P-256", "x": b64(make([]byte, 32)), "y": b64(append(make([]byte, 31), 5))},
		"EC coordinate over p":      {"kty": "EC", "crv": "P-256", "x": b64([]byte(strings.Repeat("\xff", 32))), "y": b64([]byte(strings.Repeat("\xff", 32)))},
		"EC short coordinates":      {"kty": "EC", "crv": "P-256", "x": "AQ", "y": "AQ"},
		"Ed25519 short key":         {"kty": "OKP", "crv": "Ed25519", "x": "AQ"},
		"X25519 key":                {"kty": "OKP", "crv": "X25519", "x": b64(make([]byte, 32))},
	}
	for name, k := range bad {
		k["kid"] = name
		doc, _ := json.Marshal(map[string]any{"keys": []any{k, good}})
		keys, skipped, err := Parse(doc, 100)
		if err != nil {
			t.Errorf("%s: the whole set failed: %v", name, err)
			continue
		}
		if len(keys) != 1 || keys[0].ID != "good" {
			t.Errorf("%s: keys %v, want only the good one", name, keys)
		}
		if len(skipped) != 1 || skipped[0].ID != name {
			t.Errorf("%s: skipped %v", name, skipped)
		}
	}
}

// A kid from a token reaches the operator's log through Lookup's error: it
// must be bounded, whatever its length.
func TestAttackLookupErrorBoundsKid(t *testing.T) {
	ks := newKeyServer(t, jwkJSON(t, &testRSAKey(t).PublicKey, map[string]any{"kid": "good"}))
	s := newSet(t, ks.URL, Options{})
	kid := strings.Repeat("K", 12<<10) + "\u202e\n"
	for range 2 { // the refresh, then the rate-limited answer
		_, err := s.Lookup(t.Context(), kid, "RS256")
		if err == nil {
			t.Fatal("unknown kid found")
		}
		if msg := err.Error(); len(msg) > 256 || strings.ContainsAny(msg, "\u202e\n") {
			t.Errorf("error of %d bytes: %.120q", len(msg), msg)
		}
	}
}
