package oauthtest_test

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard/oauthtest"
)

var allAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func newServer(t *testing.T, opts oauthtest.Options) *oauthtest.Server {
	t.Helper()
	srv := oauthtest.NewServer(opts)
	t.Cleanup(srv.Close)
	return srv
}

func memberNames(m map[string]any) string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

func TestJWKSSerialization(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: allAlgs})
	status, h, body := get(t, srv, srv.JWKSURL())
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := h.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control %q", cc)
	}
	if strings.Contains(string(body), "=") {
		t.Errorf("JWKS contains padding: %s", body)
	}
	keys := fetchJWKS(t, srv)
	if len(keys) != len(allAlgs) {
		t.Fatalf("%d keys, want %d", len(keys), len(allAlgs))
	}
	wantCrv := map[string]string{"ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "EdDSA": "Ed25519"}
	for i, k := range keys {
		alg := allAlgs[i]
		if k["alg"] != alg || k["use"] != "sig" || k["kid"] == "" {
			t.Errorf("key %d: %v", i, k)
		}
		switch {
		case alg[0] == 'R' || alg[0] == 'P':
			if got := memberNames(k); got != "alg,e,kid,kty,n,use" || k["kty"] != "RSA" || k["e"] != "AQAB" {
				t.Errorf("%s JWK: members %s, %v", alg, got, k)
			}
		case alg[0] == 'E' && alg != "EdDSA":
			if got := memberNames(k); got != "alg,crv,kid,kty,use,x,y" || k["kty"] != "EC" || k["crv"] != wantCrv[alg] {
				t.Errorf("%s JWK: members %s, %v", alg, got, k)
			}
		default:
			if got := memberNames(k); got != "alg,crv,kid,kty,use,x" || k["kty"] != "OKP" || k["crv"] != "Ed25519" {
				t.Errorf("%s JWK: members %s, %v", alg, got, k)
			}
		}
		publicKeyFromJWK(t, k) // checks sizes and that the point is on the curve
	}
	if got := srv.KeyIDs(); len(got) != len(keys) || got[0] != keys[0]["kid"] {
		t.Errorf("KeyIDs() = %v", got)
	}
}

func TestMintVerifiesForEachAlg(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: allAlgs})
	keys := jwksByKID(t, srv)
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			tok := srv.MintWith(oauthtest.MintOptions{Alg: alg})
			h, _ := verifyTokenWith(t, keys, tok, alg)
			if h["alg"] != alg {
				t.Errorf("header alg %v", h["alg"])
			}
		})
	}
	// Mint uses the first algorithm.
	h, _ := verifyTokenWith(t, keys, srv.Mint(nil), "RS256")
	if h["alg"] != "RS256" {
		t.Errorf("default signer alg %v", h["alg"])
	}
}

func TestRotateAndRetire(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"ES256", "EdDSA"}})
	initial := srv.KeyIDs()
	if len(initial) != 2 {
		t.Fatalf("KeyIDs() = %v", initial)
	}
	oldKeys := jwksByKID(t, srv)
	oldES := initial[0]

	newES := srv.RotateKey("ES256")
	if newES == "" || slices.Contains(initial, newES) {
		t.Fatalf("RotateKey returned %q, initial %v", newES, initial)
	}
	if got, want := srv.KeyIDs(), append(slices.Clone(initial), newES); !slices.Equal(got, want) {
		t.Fatalf("after rotate KeyIDs() = %v, want %v", got, want)
	}
	keys := jwksByKID(t, srv)
	if len(keys) != 3 {
		t.Fatalf("JWKS has %d keys after rotate", len(keys))
	}
	// The default signer moved to the new key; the old one still verifies.
	h, _ := verifyTokenWith(t, keys, srv.Mint(nil), "ES256")
	if h["kid"] != newES {
		t.Errorf("Mint signed with %v, want the rotated key %s", h["kid"], newES)
	}
	verifyTokenWith(t, keys, srv.MintWith(oauthtest.MintOptions{KeyID: oldES}), "ES256")

	// Rotating another algorithm does not change the default signer.
	newEd := srv.RotateKey("EdDSA")
	if h, _, _ := splitJWS(t, srv.Mint(nil)); h["kid"] != newES {
		t.Errorf("after rotating EdDSA, Mint signed with %v", h["kid"])
	}
	if h, _, _ := splitJWS(t, srv.MintWith(oauthtest.MintOptions{Alg: "EdDSA"})); h["kid"] != newEd {
		t.Errorf("MintWith{Alg: EdDSA} signed with %v, want %s", h["kid"], newEd)
	}

	// A rotated algorithm need not be configured.
	rsKid := srv.RotateKey("RS256")
	verifyToken(t, srv, srv.MintWith(oauthtest.MintOptions{Alg: "RS256"}), "RS256")

	srv.RetireKey(oldES)
	keys = jwksByKID(t, srv)
	if _, ok := keys[oldES]; ok {
		t.Errorf("retired key %s still published", oldES)
	}
	if slices.Contains(srv.KeyIDs(), oldES) || len(srv.KeyIDs()) != 4 {
		t.Errorf("KeyIDs() = %v after retiring %s", srv.KeyIDs(), oldES)
	}
	// A retired key still signs on request, and the JWK saved before
	// retirement verifies it.
	tok := srv.MintWith(oauthtest.MintOptions{KeyID: oldES})
	verifyTokenWith(t, oldKeys, tok, "ES256")
	srv.RetireKey(oldES) // retiring twice is harmless
	srv.RetireKey(rsKid)
	if len(fetchJWKS(t, srv)) != 3 {
		t.Errorf("JWKS after retiring two keys: %v", fetchJWKS(t, srv))
	}
}

func TestRetiredDefaultKeyStillSigns(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	kid := srv.KeyIDs()[0]
	srv.RetireKey(kid)
	if got := len(fetchJWKS(t, srv)); got != 0 {
		t.Fatalf("JWKS has %d keys", got)
	}
	if h, _, _ := splitJWS(t, srv.Mint(nil)); h["kid"] != kid {
		t.Errorf("Mint signed with %v, want the retired default %s", h["kid"], kid)
	}
}

func TestPublishExtraKey(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	oct := map[string]any{"kty": "oct", "kid": "sym", "k": "c2VjcmV0"}
	srv.PublishExtraKey(oct)
	srv.PublishExtraKey(map[string]any{"kty": "RSA", "use": "enc", "kid": "enc-1", "n": "AQAB", "e": "AQAB"})
	srv.PublishExtraKey(map[string]any{"kty": "unknown"})
	oct["k"] = "changed" // no effect after publishing

	keys := fetchJWKS(t, srv)
	if len(keys) != 4 {
		t.Fatalf("JWKS = %v", keys)
	}
	if keys[0]["kty"] != "OKP" || keys[1]["kid"] != "sym" || keys[1]["k"] != "c2VjcmV0" ||
		keys[2]["use"] != "enc" || keys[3]["kty"] != "unknown" {
		t.Errorf("JWKS = %v", keys)
	}
	if got := srv.KeyIDs(); len(got) != 1 {
		t.Errorf("KeyIDs() = %v, want only the signing key", got)
	}
	srv.RetireKey("sym")
	if keys := fetchJWKS(t, srv); len(keys) != 3 || keys[1]["kid"] != "enc-1" {
		t.Errorf("after retiring sym: %v", keys)
	}
}

func TestJWKSCacheControl(t *testing.T) {
	tests := []struct {
		option string
		want   []string
	}{
		{"", []string{"public, max-age=300"}},
		{"no-store", []string{"no-store"}},
		{"-", nil},
	}
	for _, tc := range tests {
		t.Run(tc.option, func(t *testing.T) {
			srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}, JWKSCacheControl: tc.option})
			_, h, _ := get(t, srv, srv.JWKSURL())
			if got := h.Values("Cache-Control"); !slices.Equal(got, tc.want) {
				t.Errorf("Cache-Control = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestKeyMisusePanics(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	kid := srv.KeyIDs()[0]
	tests := []struct {
		name string
		want string
		f    func()
	}{
		{"retire unknown", `no key "nope"`, func() { srv.RetireKey("nope") }},
		{"mint unknown kid", `no signing key "nope"`, func() { srv.MintWith(oauthtest.MintOptions{KeyID: "nope"}) }},
		{"mint alg without key", "no ES256 key", func() { srv.MintWith(oauthtest.MintOptions{Alg: "ES256"}) }},
		{"mint kid of another alg", "is for EdDSA, not ES256", func() { srv.MintWith(oauthtest.MintOptions{KeyID: kid, Alg: "ES256"}) }},
		{"rotate unsupported", "unsupported algorithm", func() { srv.RotateKey("HS256") }},
		{"extra key not JSON", "PublishExtraKey", func() { srv.PublishExtraKey(map[string]any{"f": func() {}}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { mustPanic(t, tc.want, tc.f) })
	}
}
