package jwks

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/lestrrat-go/jwx/v3/jwk"

	ijws "github.com/tokenguard/tokenguard/internal/jws"
	"github.com/tokenguard/tokenguard/internal/jwt"
)

// Key is one verification key from a key set.
type Key struct {
	// ID is the JWK's kid; empty when the JWK has none.
	ID string
	// Algorithm is the JWK's alg; empty when the JWK does not restrict it.
	Algorithm string
	// Public is an *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey.
	Public crypto.PublicKey
	// Thumbprint identifies the key material across refreshes: SHA-256 of
	// its PKIX encoding (raw bytes, not for display).
	Thumbprint string

	// life is shared by every copy of this key in every snapshot of its
	// Set for as long as the Set holds a key with this Thumbprint.
	life *KeyLife
}

// KeyLife says whether a key is still in its Set. One KeyLife serves every
// copy of the key across the Set's refreshes, so a cache of what the key
// verified can keep a pointer to it and ask on every hit (one atomic
// load) instead of being purged at every refresh.
type KeyLife struct{ gone atomic.Bool }

// Live reports whether the key is still in its Set: false from the
// refresh that drops it (its Thumbprint is no longer published) on. A nil
// KeyLife (a key from Parse) is always live.
func (l *KeyLife) Live() bool { return l == nil || !l.gone.Load() }

// Life returns the key's KeyLife; nil for a key from Parse.
func (k Key) Life() *KeyLife { return k.life }

// Live reports whether the key is still in its Set (see KeyLife).
func (k Key) Live() bool { return k.life.Live() }

// Skipped describes a JWK that was left out of the set and why. Skipping is
// normal (an encryption key, an unknown key type) and never fails a refresh.
type Skipped struct {
	Index  int
	ID     string
	Reason string
}

// parsed is the immutable result of one successful fetch.
type parsed struct {
	keys    []Key
	skipped []Skipped
	// index maps (kid, alg) to the keys usable for that pair. The kid ""
	// entry of an alg lists every key usable for that alg, so a token without
	// a kid can still be verified against a set that names its keys.
	index map[lookup][]Key
}

type lookup struct{ kid, alg string }

// Parse reads a JWK Set document (RFC 7517 §5). Keys that cannot verify
// signatures are skipped: use "enc", key_ops without "verify", symmetric
// keys, unknown key types, RSA moduli under 2048 or over 8192 bits, Ed25519
// keys of small order, off the curve or not canonically encoded, and an alg
// this library does not verify. At most maxKeys entries are accepted.
func Parse(doc []byte, maxKeys int) (keys []Key, skipped []Skipped, err error) {
	p, err := parse(doc, maxKeys, nil)
	if err != nil {
		return nil, nil, err
	}
	for i := range p.keys {
		p.keys[i].life = nil
	}
	return p.keys, p.skipped, nil
}

// parse reads doc; a key whose thumbprint is in prev keeps that life, so
// that what was verified by it stays valid across the refresh.
func parse(doc []byte, maxKeys int, prev map[string]*KeyLife) (*parsed, error) {
	// One JSON object with nothing after it (Unmarshal refuses trailing
	// data), whose member names are all distinct under case folding:
	// encoding/json would match "KEYS" for keys and keep the last of two,
	// while an exact-name reader sees the other. Each key is held to the
	// same at every depth below (parseKey), so one bad key is skipped, not
	// the whole set.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	if err := topLevelNames(doc); err != nil {
		return nil, fmt.Errorf("not a JWK Set: %w", err)
	}
	rawKeys, ok := top["keys"]
	if !ok {
		return nil, errors.New(`not a JWK Set: no "keys" member`)
	}
	var keys []json.RawMessage
	if err := json.Unmarshal(rawKeys, &keys); err != nil || keys == nil {
		return nil, errors.New(`not a JWK Set: "keys" is not an array`)
	}
	if maxKeys > 0 && len(keys) > maxKeys {
		return nil, fmt.Errorf("JWK Set has %d keys, more than the limit of %d", len(keys), maxKeys)
	}
	p := &parsed{index: make(map[lookup][]Key)}
	for i, raw := range keys {
		k, reason := parseKey(raw)
		if reason != "" {
			p.skipped = append(p.skipped, Skipped{Index: i, ID: k.ID, Reason: reason})
			continue
		}
		if k.life = prev[k.Thumbprint]; k.life == nil {
			k.life = new(KeyLife)
			if prev == nil {
				prev = make(map[string]*KeyLife)
			}
			prev[k.Thumbprint] = k.life // a duplicate key shares it too
		}
		p.keys = append(p.keys, k)
		for _, alg := range ijws.Algorithms {
			if k.Algorithm != "" && k.Algorithm != alg {
				continue
			}
			if !ijws.KeyFits(alg, k.Public) {
				continue
			}
			p.index[lookup{k.ID, alg}] = append(p.index[lookup{k.ID, alg}], k)
			if k.ID != "" {
				p.index[lookup{"", alg}] = append(p.index[lookup{"", alg}], k)
			}
		}
	}
	return p, nil
}

// topLevelNames refuses a document two of whose top-level member names
// are equal under case folding (or equal).
func topLevelNames(doc []byte) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	if _, err := dec.Token(); err != nil { // '{', checked by Unmarshal
		return err
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		for _, n := range names {
			if strings.EqualFold(n, name) {
				return fmt.Errorf("member names %q and %q are equal under case folding", n, name)
			}
		}
		if len(names) < 64 {
			names = append(names, name)
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// parseKey returns the key or, when it must be skipped, a reason.
func parseKey(raw json.RawMessage) (Key, string) {
	// Read the members we police ourselves before jwx sees the key, so a key
	// jwx cannot parse is still reported with its kid.
	// By exact name, as jwx reads them (see parse), in a key whose names
	// at every depth are distinct under case folding.
	if err := jwt.CheckObject(raw); err != nil {
		return Key{}, "not a JSON object with distinct member names: " + err.Error()
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Key{}, "not a JSON object"
	}
	var hdr struct {
		Kty, Kid, Alg, Use string
		KeyOps             []string
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"kty", &hdr.Kty}, {"kid", &hdr.Kid}, {"alg", &hdr.Alg}, {"use", &hdr.Use}} {
		if v, ok := m[f.name]; ok && json.Unmarshal(v, f.dst) != nil {
			return Key{ID: hdr.Kid}, f.name + " is not a string"
		}
	}
	if v, ok := m["key_ops"]; ok && json.Unmarshal(v, &hdr.KeyOps) != nil {
		return Key{ID: hdr.Kid}, "key_ops is not an array of strings"
	}
	k := Key{ID: hdr.Kid, Algorithm: hdr.Alg}
	// Present is what counts: "use": "" names no use, so it is not a
	// signature key either (null is as good as absent).
	if v, ok := m["use"]; ok && string(v) != "null" && hdr.Use != "sig" {
		return k, fmt.Sprintf("use %q is not sig", hdr.Use)
	}
	if hdr.KeyOps != nil && !slices.Contains(hdr.KeyOps, "verify") {
		return k, "key_ops does not include verify"
	}
	switch hdr.Kty {
	case "RSA", "EC", "OKP":
	default:
		return k, fmt.Sprintf("key type %q cannot verify with a public key", hdr.Kty)
	}
	if hdr.Alg != "" && !ijws.Supported(hdr.Alg) {
		return k, fmt.Sprintf("alg %q is not a supported signature algorithm", hdr.Alg)
	}
	jk, err := jwk.ParseKey(raw)
	if err != nil {
		return k, "invalid JWK: " + err.Error()
	}
	pub, err := jk.PublicKey()
	if err != nil {
		return k, "no public key: " + err.Error()
	}
	var rawKey any
	if err := jwk.Export(pub, &rawKey); err != nil {
		return k, "cannot export key: " + err.Error()
	}
	switch pk := rawKey.(type) {
	case *rsa.PublicKey:
		if pk.N.BitLen() < ijws.MinRSABits {
			return k, fmt.Sprintf("RSA modulus of %d bits is under %d", pk.N.BitLen(), ijws.MinRSABits)
		}
		if pk.N.BitLen() > ijws.MaxRSABits {
			return k, fmt.Sprintf("RSA modulus of %d bits is over %d", pk.N.BitLen(), ijws.MaxRSABits)
		}
		k.Public = pk
	case *ecdsa.PublicKey:
		k.Public = pk
	case ed25519.PublicKey:
		// jwx checks only the length: a small-order key would let anyone
		// forge signatures.
		if flaw := ed25519Flaw(pk); flaw != "" {
			return k, flaw
		}
		k.Public = pk
	default:
		return k, fmt.Sprintf("key of type %T cannot verify signatures", rawKey)
	}
	if hdr.Alg != "" && !ijws.KeyFits(hdr.Alg, k.Public) {
		return k, fmt.Sprintf("key does not fit its own alg %q", hdr.Alg)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public)
	if err != nil {
		return k, "cannot encode key: " + err.Error()
	}
	sum := sha256.Sum256(der)
	k.Thumbprint = string(sum[:])
	return k, ""
}
