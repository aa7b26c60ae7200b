package dpop

import (
	"testing"
)

// The key cache gives what a parse gives: a valid proof verifies with
// the same thumbprint from the cache, and a jwk refused once is refused
// every time (refusals are not cached as keys, and the alg is part of
// the key: a jwk cached for one alg does not pass for another).
func TestKeyCache(t *testing.T) {
	cache := NewKeyCache(8)
	o := testOptions()
	o.Keys = cache
	s := newSpec(t, "ES256")
	want, err := Verify(s.mint(t), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s.claims["jti"] = "jti-" + string(rune('a'+i))
		p, err := Verify(s.mint(t), o)
		if err != nil || p.Thumbprint != want.Thumbprint {
			t.Fatalf("round %d: %v, thumbprint %q want %q", i, err, p.Thumbprint, want.Thumbprint)
		}
	}
	if cache.keys.Len() != 1 {
		t.Fatalf("%d keys cached, want 1", cache.keys.Len())
	}

	// A private member: refused, and again, and never cached.
	bad := newSpec(t, "ES256")
	bad.jwk()["d"] = "AAAA"
	for range 2 {
		if _, err := Verify(bad.mint(t), o); err == nil {
			t.Fatal("a jwk with a private member verified")
		}
	}
	if cache.keys.Len() != 1 {
		t.Fatalf("a refused jwk was cached: %d keys", cache.keys.Len())
	}

	// The cached ES256 jwk under another alg header: the signature is
	// still ES256, so only the cache could make it pass; it must not.
	other := newSpec(t, "ES256")
	other.header["alg"] = "ES384"
	other.alg = "ES256"
	if _, err := Verify(other.mint(t), o); err == nil {
		t.Fatal("the cached key was taken for another alg")
	}

	// A forged signature with a cached key is still refused.
	forged := s.mint(t)
	forged = forged[:len(forged)-4] + "AAAA"
	if _, err := Verify(forged, o); err == nil {
		t.Fatal("a forged proof verified with a cached key")
	}
}
