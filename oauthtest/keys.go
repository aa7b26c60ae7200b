package oauthtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
)

// signingKey is one generated key pair. Its fields never change after
// creation except published, which is guarded by Server.mu.
type signingKey struct {
	kid       string
	alg       string
	signer    crypto.Signer
	jwk       json.RawMessage // the public JWK, encoded once
	published bool
}

// extraKey is a JWK published with PublishExtraKey.
type extraKey struct {
	kid string // "" when the object has no string kid
	raw json.RawMessage
}

func newSigningKey(alg string) *signingKey {
	spec, err := lookupAlg(alg)
	if err != nil {
		panic(err.Error())
	}
	var signer crypto.Signer
	switch spec.kty {
	case "RSA":
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case "EC":
		signer, err = ecdsa.GenerateKey(spec.curve, rand.Reader)
	default:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		panic(fmt.Sprintf("oauthtest: generating %s key: %v", alg, err))
	}
	k := &signingKey{kid: randomID(), alg: alg, signer: signer, published: true}
	k.jwk, err = json.Marshal(publicJWK(signer.Public(), k.kid, alg))
	if err != nil {
		panic("oauthtest: " + err.Error())
	}
	return k
}

// publicJWK serializes a public key as RFC 7517/7518/8037 describe: unpadded
// base64url, EC coordinates at the full size of the curve.
func publicJWK(pub crypto.PublicKey, kid, alg string) map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	jwk := map[string]any{"kid": kid, "alg": alg, "use": "sig"}
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		jwk["kty"] = "RSA"
		jwk["n"] = b64(pub.N.Bytes())
		jwk["e"] = b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		point, err := pub.Bytes() // 0x04 || X || Y, each of the curve's size
		if err != nil {
			panic("oauthtest: " + err.Error())
		}
		size := (len(point) - 1) / 2
		jwk["kty"] = "EC"
		jwk["crv"] = pub.Curve.Params().Name
		jwk["x"] = b64(point[1 : 1+size])
		jwk["y"] = b64(point[1+size:])
	case ed25519.PublicKey:
		jwk["kty"] = "OKP"
		jwk["crv"] = "Ed25519"
		jwk["x"] = b64(pub)
	default:
		panic(fmt.Sprintf("oauthtest: unexpected key type %T", pub))
	}
	return jwk
}

// randomID returns 16 characters of unpadded base64url from 96 random bits.
func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails, see crypto/rand.Read
	return base64.RawURLEncoding.EncodeToString(b)
}

// addKey generates a key for alg and makes it the default signer for alg.
func (s *Server) addKey(alg string) *signingKey {
	k := newSigningKey(alg) // slow for RSA: outside the lock
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
	s.current[alg] = k
	return k
}

// RotateKey generates a new key for alg under a fresh random key id, publishes
// it and makes it the key [Server.Mint] uses for alg: the default signer when
// alg is the first of Options.Algorithms. Earlier keys stay published until
// retired. alg need not be in Options.Algorithms. RotateKey returns the new
// key id and panics if alg is not supported.
func (s *Server) RotateKey(alg string) (kid string) {
	return s.addKey(alg).kid
}

// RetireKey removes the key kid from the JWK Set. A retired signing key can
// still sign through [MintOptions].KeyID, and stays the default signer for
// its algorithm until [Server.RotateKey] replaces it, so a test can mint
// tokens whose key has disappeared. RetireKey also removes keys published
// with [Server.PublishExtraKey]. It panics if no key has that id.
func (s *Server) RetireKey(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for _, k := range s.keys {
		if k.kid == kid {
			k.published = false
			found = true
		}
	}
	kept := s.extra[:0]
	for _, e := range s.extra {
		if e.kid == kid {
			found = true
			continue
		}
		kept = append(kept, e)
	}
	clear(s.extra[len(kept):])
	s.extra = kept
	if !found {
		panic(fmt.Sprintf("oauthtest: RetireKey: no key %q", kid))
	}
}

// KeyIDs returns the key ids of the published signing keys, in the order of
// the JWK Set (oldest first). Keys added with [Server.PublishExtraKey] are
// not included.
func (s *Server) KeyIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var kids []string
	for _, k := range s.keys {
		if k.published {
			kids = append(kids, k.kid)
		}
	}
	return kids
}

// PublishExtraKey appends an arbitrary JSON object to the JWK Set after the
// signing keys, such as a symmetric "oct" key, a key with "use": "enc", an
// unknown "kty" or a malformed key, so a test can check that a client skips
// it. The object is encoded when PublishExtraKey is called; later changes to
// jwk have no effect. It panics if jwk cannot be encoded as JSON.
func (s *Server) PublishExtraKey(jwk map[string]any) {
	raw, err := json.Marshal(jwk)
	if err != nil {
		panic("oauthtest: PublishExtraKey: " + err.Error())
	}
	kid, _ := jwk["kid"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extra = append(s.extra, extraKey{kid: kid, raw: raw})
}

func (s *Server) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	keys := make([]json.RawMessage, 0, len(s.keys)+len(s.extra))
	for _, k := range s.keys {
		if k.published {
			keys = append(keys, k.jwk)
		}
	}
	for _, e := range s.extra {
		keys = append(keys, e.raw)
	}
	s.mu.Unlock()
	if cc := s.opts.JWKSCacheControl; cc != "-" {
		w.Header().Set("Cache-Control", cc)
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// signingKeyFor picks the key for MintWith: by kid, else the current key for
// alg, else the default signer.
func (s *Server) signingKeyFor(alg, kid string) *signingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kid != "" {
		for _, k := range s.keys {
			if k.kid == kid {
				if alg != "" && alg != k.alg {
					panic(fmt.Sprintf("oauthtest: key %q is for %s, not %s", kid, k.alg, alg))
				}
				return k
			}
		}
		panic(fmt.Sprintf("oauthtest: no signing key %q", kid))
	}
	if alg == "" {
		alg = s.opts.Algorithms[0]
	}
	k := s.current[alg]
	if k == nil {
		panic(fmt.Sprintf("oauthtest: no %s key; list it in Options.Algorithms or call RotateKey", alg))
	}
	return k
}
