package oauthtest_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard/oauthtest"
)

// This file holds an independent JWS verifier built on crypto/* alone: it
// rebuilds public keys from the served JWK Set and checks signatures, so the
// tests do not trust the code under test to read back what it wrote.

var b64 = base64.RawURLEncoding.Strict()

// decodeJSONSegment decodes one unpadded base64url segment holding a JSON object.
func decodeJSONSegment(t *testing.T, seg string) map[string]any {
	t.Helper()
	raw, err := b64.DecodeString(seg)
	if err != nil {
		t.Fatalf("segment %q is not unpadded base64url: %v", seg, err)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("segment is not a JSON object: %v: %s", err, raw)
	}
	return m
}

// splitJWS returns the decoded header and claims and the raw parts.
func splitJWS(t *testing.T, token string) (header, claims map[string]any, parts []string) {
	t.Helper()
	parts = strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3: %q", len(parts), token)
	}
	return decodeJSONSegment(t, parts[0]), decodeJSONSegment(t, parts[1]), parts
}

func mustB64(t *testing.T, jwk map[string]any, name string) []byte {
	t.Helper()
	s, ok := jwk[name].(string)
	if !ok {
		t.Fatalf("JWK member %q missing or not a string: %v", name, jwk)
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatalf("JWK member %q is not unpadded base64url: %v", name, err)
	}
	return b
}

// publicKeyFromJWK rebuilds a public key from its JWK (RFC 7518 §6, RFC 8037).
func publicKeyFromJWK(t *testing.T, jwk map[string]any) crypto.PublicKey {
	t.Helper()
	switch jwk["kty"] {
	case "RSA":
		n := new(big.Int).SetBytes(mustB64(t, jwk, "n"))
		e := new(big.Int).SetBytes(mustB64(t, jwk, "e"))
		if n.BitLen() != 2048 {
			t.Errorf("RSA modulus has %d bits, want 2048", n.BitLen())
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		var curve elliptic.Curve
		switch jwk["crv"] {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			t.Fatalf("unexpected crv %v", jwk["crv"])
		}
		size := (curve.Params().BitSize + 7) / 8
		x, y := mustB64(t, jwk, "x"), mustB64(t, jwk, "y")
		if len(x) != size || len(y) != size {
			t.Fatalf("EC coordinates are %d and %d bytes, want %d (fixed size)", len(x), len(y), size)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			t.Fatalf("EC key: %v", err)
		}
		return pub
	case "OKP":
		if jwk["crv"] != "Ed25519" {
			t.Fatalf("unexpected crv %v", jwk["crv"])
		}
		x := mustB64(t, jwk, "x")
		if len(x) != ed25519.PublicKeySize {
			t.Fatalf("Ed25519 x is %d bytes", len(x))
		}
		return ed25519.PublicKey(x)
	}
	t.Fatalf("unexpected kty %v", jwk["kty"])
	return nil
}

// verifySignature checks a JWS signature with crypto/* directly.
func verifySignature(pub crypto.PublicKey, alg, signingInput string, sig []byte) error {
	hashes := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
	var h crypto.Hash
	if alg != "EdDSA" && len(alg) == 5 {
		h = hashes[alg[2:]]
	}
	var digest []byte
	if h != 0 {
		d := h.New()
		d.Write([]byte(signingInput))
		digest = d.Sum(nil)
	}
	switch {
	case strings.HasPrefix(alg, "RS"):
		pk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%s with %T", alg, pub)
		}
		return rsa.VerifyPKCS1v15(pk, h, digest, sig)
	case strings.HasPrefix(alg, "PS"):
		pk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("%s with %T", alg, pub)
		}
		return rsa.VerifyPSS(pk, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case strings.HasPrefix(alg, "ES"):
		pk, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("%s with %T", alg, pub)
		}
		size := (pk.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return fmt.Errorf("ECDSA signature is %d bytes, want %d", len(sig), 2*size)
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(pk, digest, r, s) {
			return fmt.Errorf("ECDSA signature does not verify")
		}
		return nil
	case alg == "EdDSA":
		pk, ok := pub.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("%s with %T", alg, pub)
		}
		if !ed25519.Verify(pk, []byte(signingInput), sig) {
			return fmt.Errorf("Ed25519 signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unexpected alg %q", alg)
}

// jwksByKID fetches the served JWK Set and indexes it by kid.
func jwksByKID(t *testing.T, srv *oauthtest.Server) map[string]map[string]any {
	t.Helper()
	keys := fetchJWKS(t, srv)
	m := make(map[string]map[string]any)
	for _, k := range keys {
		kid, _ := k["kid"].(string)
		m[kid] = k
	}
	return m
}

func fetchJWKS(t *testing.T, srv *oauthtest.Server) []map[string]any {
	t.Helper()
	status, _, body := get(t, srv, srv.JWKSURL())
	if status != http.StatusOK {
		t.Fatalf("JWKS status %d: %s", status, body)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS: %v: %s", err, body)
	}
	return set.Keys
}

// verifyToken checks token against the served JWK Set, using the signing
// algorithm alg (which the header may misstate on purpose), and returns the
// decoded header and claims.
func verifyToken(t *testing.T, srv *oauthtest.Server, token, alg string) (header, claims map[string]any) {
	t.Helper()
	return verifyTokenWith(t, jwksByKID(t, srv), token, alg)
}

func verifyTokenWith(t *testing.T, keys map[string]map[string]any, token, alg string) (header, claims map[string]any) {
	t.Helper()
	header, claims, parts := splitJWS(t, token)
	kid, _ := header["kid"].(string)
	jwk, ok := keys[kid]
	if !ok {
		t.Fatalf("kid %q not in the JWK Set", kid)
	}
	if jwk["alg"] != alg {
		t.Fatalf("JWK alg %v, want %s", jwk["alg"], alg)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("signature is not unpadded base64url: %v", err)
	}
	if err := verifySignature(publicKeyFromJWK(t, jwk), alg, parts[0]+"."+parts[1], sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	return header, claims
}

func get(t *testing.T, srv *oauthtest.Server, u string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := srv.Client().Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", u, err)
	}
	return resp.StatusCode, resp.Header, body
}

// getDoc fetches a JSON document and checks it is served as application/json.
func getDoc(t *testing.T, srv *oauthtest.Server, u string) map[string]any {
	t.Helper()
	status, h, body := get(t, srv, u)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", u, status, body)
	}
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", u, ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
	return doc
}

type tokenResponse struct {
	status int
	header http.Header
	body   map[string]any
}

// postToken sends a form to the token endpoint; basic, when not nil, holds
// the raw user and password for the Authorization header (not encoded here).
func postToken(t *testing.T, srv *oauthtest.Server, form url.Values, basic []string) tokenResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(basic[0], basic[1])
	}
	return do(t, srv, req)
}

func do(t *testing.T, srv *oauthtest.Server, req *http.Request) tokenResponse {
	t.Helper()
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("%s %s: status %d, body is not JSON: %v: %s", req.Method, req.URL, resp.StatusCode, err, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", req.Method, req.URL, ct)
	}
	return tokenResponse{resp.StatusCode, resp.Header, body}
}

// mustPanic runs f and fails unless it panics with a message containing want.
func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one containing %q", want)
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
			t.Fatalf("panic %q, want one containing %q", msg, want)
		}
	}()
	f()
}

// numericClaim returns a json.Number claim as int64.
func numericClaim(t *testing.T, claims map[string]any, name string) int64 {
	t.Helper()
	n, ok := claims[name].(json.Number)
	if !ok {
		t.Fatalf("claim %s = %#v, want a number", name, claims[name])
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("claim %s = %v, want an integer", name, n)
	}
	return v
}
