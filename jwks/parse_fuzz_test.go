package jwks

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard/internal/jsontest"
	ijws "github.com/tokenguard/tokenguard/internal/jws"
)

// jsonMember is one member of a JSON object as sent.
type jsonMember = jsontest.Member

// objectMembers reads b as one JSON object (jsontest.Members).
func objectMembers(b []byte) ([]jsonMember, bool) { return jsontest.Members(b) }

// named returns the raw values of the members called exactly name.
func named(ms []jsonMember, name string) []json.RawMessage {
	var out []json.RawMessage
	for _, m := range ms {
		if m.Name == name {
			out = append(out, m.Raw)
		}
	}
	return out
}

// jsonString reads raw as a string; null is "".
func jsonString(raw json.RawMessage) (string, bool) {
	var s *string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	if s == nil {
		return "", true
	}
	return *s, true
}

// topFolded reports whether two top-level names fold together.
func topFolded(top []jsonMember) bool {
	for i, a := range top {
		for _, b := range top[:i] {
			if strings.EqualFold(a.Name, b.Name) {
				return true
			}
		}
	}
	return false
}

// foldedDuplicate: Parse must refuse (or skip) what jsontest says folds.
func foldedDuplicate(b []byte) bool { return jsontest.FoldedDuplicate(b) }

// FuzzParseKeySet: Parse never panics and returns keys or an error, never
// both. A set it accepts is one JSON object (nothing after it) with one
// member named exactly "keys", an array of at most maxKeys entries, each
// either returned as a key or reported as skipped, in order. Every key
// returned can verify: an RSA key of 2048 to 8192 bits, an ECDSA key, or an
// Ed25519 key that is not of small order; its thumbprint is SHA-256 of its
// PKIX encoding; its Algorithm, when set, is supported and fits it; read by
// exact member names, its JWK has use "sig" or none, key_ops with verify
// or none, and the kid and alg the Key carries. The lookup index holds
// exactly the keys fitting each alg under their kid and under "".
func FuzzParseKeySet(f *testing.F) {
	for _, s := range []string{
		`{"keys":[]}`,
		`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`,
		`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`,
		`{"keys":[{},1,"x",null,[]]}`,
		`{"keys":null}`,
		`{"keys":{}}`,
		`{"kys":[]}`,
		`{"keys":[]} {}`,
		`[]`,
		``,
	} {
		f.Add([]byte(s), uint8(0))
	}
	small := smallOrderKeys(f)
	f.Fuzz(func(t *testing.T, doc []byte, maxKeys uint8) {
		keys, skipped, err := Parse(doc, int(maxKeys))

		// The document as an exact-name reader sees it.
		top, isObject := objectMembers(doc)
		var entries []json.RawMessage
		if ks := named(top, "keys"); len(ks) == 1 {
			_ = json.Unmarshal(ks[0], &entries)
		}
		if err != nil {
			if keys != nil || skipped != nil {
				t.Fatalf("keys %v, skipped %v and error %v", keys, skipped, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "not a JWK Set") && !strings.HasPrefix(msg, "JWK Set has ") {
				t.Fatalf("error %q names neither the document nor the limit", msg)
			}
			if isObject && entries != nil && !topFolded(top) && (maxKeys == 0 || len(entries) <= int(maxKeys)) {
				t.Fatalf("a JWK Set of %d entries refused: %v", len(entries), err)
			}
			return
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf(format, args...)
		}
		if !isObject {
			fail("accepted a document that is not one JSON object: %q", doc)
		}
		for i, a := range top {
			for _, b := range top[:i] {
				if strings.EqualFold(a.Name, b.Name) {
					fail("accepted a document whose top-level names %q and %q fold together", b.Name, a.Name)
				}
			}
		}
		if len(keys)+len(skipped) != len(entries) {
			fail("%d keys and %d skipped from a document whose keys member has %d entries", len(keys), len(skipped), len(entries))
		}
		if maxKeys > 0 && len(entries) > int(maxKeys) {
			fail("%d entries accepted with a limit of %d", len(entries), maxKeys)
		}
		skippedAt := map[int]bool{}
		for i, s := range skipped {
			if s.Index < 0 || s.Index >= len(entries) || i > 0 && s.Index <= skipped[i-1].Index || s.Reason == "" {
				fail("skipped %+v (entry %d): index out of order or range, or no reason", s, i)
			}
			skippedAt[s.Index] = true
		}
		next := 0
		for _, k := range keys {
			for skippedAt[next] {
				next++
			}
			if foldedDuplicate(entries[next]) {
				fail("entry %d, with member names that fold together, used as a key", next)
			}
			jwk, _ := objectMembers(entries[next])
			checkKey(t, k, small, fail)
			for _, raw := range named(jwk, "use") {
				if s, _ := jsonString(raw); s != "sig" && string(raw) != "null" {
					fail("entry %d with use %s accepted", next, raw)
				}
			}
			for _, raw := range named(jwk, "key_ops") {
				var ops []string
				if string(raw) != "null" && (json.Unmarshal(raw, &ops) != nil || !slices.Contains(ops, "verify")) {
					fail("entry %d with key_ops %s accepted", next, raw)
				}
			}
			for _, m := range []struct {
				Name, got string
			}{{"kid", k.ID}, {"alg", k.Algorithm}} {
				want := ""
				if raws := named(jwk, m.Name); len(raws) > 0 {
					want, _ = jsonString(raws[len(raws)-1])
				}
				if m.got != want {
					fail("entry %d: %s %q, the JWK's is %q", next, m.Name, m.got, want)
				}
			}
			next++
		}
		checkIndex(t, doc, int(maxKeys), keys)
	})
}

// checkKey checks that k can verify signatures and is described truly.
func checkKey(t *testing.T, k Key, small []smallOrderKey, fail func(string, ...any)) {
	t.Helper()
	switch pk := k.Public.(type) {
	case *rsa.PublicKey:
		if n := pk.N.BitLen(); n < ijws.MinRSABits || n > ijws.MaxRSABits || pk.E < 3 {
			fail("RSA key of %d bits, e %d accepted", n, pk.E)
		}
	case *ecdsa.PublicKey:
		if pk.Curve == nil || pk.X == nil || pk.Y == nil {
			fail("incomplete ECDSA key accepted")
		}
		if _, err := pk.ECDH(); err != nil {
			fail("ECDSA key off its curve accepted: %v", err)
		}
	case ed25519.PublicKey:
		for _, s := range small {
			if bytes.Equal(pk, s.enc) {
				fail("Ed25519 key %s accepted", s.name)
			}
		}
	default:
		fail("key of type %T accepted", k.Public)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		fail("accepted key cannot be encoded: %v", err)
	}
	if sum := sha256.Sum256(der); k.Thumbprint != string(sum[:]) {
		fail("thumbprint is not SHA-256 of the PKIX encoding")
	}
	fits := 0
	for _, alg := range ijws.Algorithms {
		if ijws.KeyFits(alg, k.Public) {
			fits++
		}
	}
	if fits == 0 || k.Algorithm != "" && (!ijws.Supported(k.Algorithm) || !ijws.KeyFits(k.Algorithm, k.Public)) {
		fail("key %q with alg %q fits %d algorithms", k.ID, k.Algorithm, fits)
	}
}

// checkIndex checks the lookup index against the keys Parse returned.
func checkIndex(t *testing.T, doc []byte, maxKeys int, keys []Key) {
	t.Helper()
	p, err := parse(doc, maxKeys, nil)
	if err != nil {
		t.Fatalf("parse fails where Parse did not: %v", err)
	}
	for l, ks := range p.index {
		for _, k := range ks {
			if !ijws.KeyFits(l.alg, k.Public) || k.Algorithm != "" && k.Algorithm != l.alg || l.kid != "" && l.kid != k.ID {
				t.Fatalf("index %+v holds key %q (alg %q)", l, k.ID, k.Algorithm)
			}
		}
	}
	for _, k := range keys {
		for _, alg := range ijws.Algorithms {
			if !ijws.KeyFits(alg, k.Public) || k.Algorithm != "" && k.Algorithm != alg {
				continue
			}
			for _, kid := range []string{k.ID, ""} {
				if !slices.ContainsFunc(p.index[lookup{kid, alg}], func(x Key) bool { return x.Thumbprint == k.Thumbprint && x.ID == k.ID }) {
					t.Fatalf("key %q missing from the index under (%q, %s)", k.ID, kid, alg)
				}
			}
		}
	}
}
