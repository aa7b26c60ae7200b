package oauthtest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // SHA-256 for RS256, PS256, ES256
	_ "crypto/sha512" // SHA-384 and SHA-512 for the other sizes
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// algSpec describes one JWS algorithm (RFC 7518 §3, RFC 8037).
type algSpec struct {
	kty   string         // "RSA", "EC" or "OKP"
	hash  crypto.Hash    // zero for EdDSA
	pss   bool           // RSASSA-PSS rather than PKCS #1 v1.5
	curve elliptic.Curve // for EC
}

var errUnsupportedAlg = errors.New("unsupported algorithm")

func lookupAlg(alg string) (algSpec, error) {
	switch alg {
	case "RS256":
		return algSpec{kty: "RSA", hash: crypto.SHA256}, nil
	case "RS384":
		return algSpec{kty: "RSA", hash: crypto.SHA384}, nil
	case "RS512":
		return algSpec{kty: "RSA", hash: crypto.SHA512}, nil
	case "PS256":
		return algSpec{kty: "RSA", hash: crypto.SHA256, pss: true}, nil
	case "PS384":
		return algSpec{kty: "RSA", hash: crypto.SHA384, pss: true}, nil
	case "PS512":
		return algSpec{kty: "RSA", hash: crypto.SHA512, pss: true}, nil
	case "ES256":
		return algSpec{kty: "EC", hash: crypto.SHA256, curve: elliptic.P256()}, nil
	case "ES384":
		return algSpec{kty: "EC", hash: crypto.SHA384, curve: elliptic.P384()}, nil
	case "ES512":
		return algSpec{kty: "EC", hash: crypto.SHA512, curve: elliptic.P521()}, nil
	case "EdDSA":
		return algSpec{kty: "OKP"}, nil
	}
	return algSpec{}, fmt.Errorf("oauthtest: %w %q", errUnsupportedAlg, alg)
}

func supportedAlg(alg string) bool {
	_, err := lookupAlg(alg)
	return err == nil
}

// SignJWT returns the compact JWS serialization of claims under header, signed
// with key using alg. It adds nothing: the header is encoded exactly as given
// (so it may name another alg, lack a kid or carry crit), which lets tests
// forge tokens with keys of their own. A nil map encodes as {}.
//
// alg is one of RS256, RS384, RS512, PS256, PS384, PS512 (key backed by an
// *rsa.PrivateKey), ES256, ES384, ES512 (an *ecdsa.PrivateKey on P-256, P-384,
// P-521; the signature is the fixed-size R || S of RFC 7518 §3.4) and EdDSA
// (an ed25519.PrivateKey). alg "none" with a nil key produces an unsecured
// JWS with an empty signature. SignJWT returns an error if the key does not
// fit the algorithm or a map cannot be encoded as JSON.
func SignJWT(header, claims map[string]any, key crypto.Signer, alg string) (string, error) {
	h, err := encodeSegment(header)
	if err != nil {
		return "", fmt.Errorf("oauthtest: encoding header: %w", err)
	}
	c, err := encodeSegment(claims)
	if err != nil {
		return "", fmt.Errorf("oauthtest: encoding claims: %w", err)
	}
	input := h + "." + c
	sig, err := sign(key, alg, []byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func encodeSegment(m map[string]any) (string, error) {
	if m == nil {
		m = map[string]any{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

func sign(key crypto.Signer, alg string, input []byte) ([]byte, error) {
	if alg == "none" {
		if key != nil {
			return nil, errors.New(`oauthtest: alg "none" takes a nil key`)
		}
		return nil, nil
	}
	spec, err := lookupAlg(alg)
	if err != nil {
		return nil, err
	}
	if key == nil {
		return nil, fmt.Errorf("oauthtest: nil key for %s", alg)
	}
	pub := key.Public()
	switch spec.kty {
	case "RSA":
		if _, ok := pub.(*rsa.PublicKey); !ok {
			return nil, fmt.Errorf("oauthtest: %s needs an RSA key, not %T", alg, pub)
		}
		var opts crypto.SignerOpts = spec.hash
		if spec.pss {
			opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: spec.hash}
		}
		sig, err := key.Sign(rand.Reader, digest(spec.hash, input), opts)
		if err != nil {
			return nil, fmt.Errorf("oauthtest: signing %s: %w", alg, err)
		}
		return sig, nil
	case "EC":
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != spec.curve {
			return nil, fmt.Errorf("oauthtest: %s needs an ECDSA key on %s, not %s", alg, spec.curve.Params().Name, describeKey(pub))
		}
		der, err := key.Sign(rand.Reader, digest(spec.hash, input), spec.hash)
		if err != nil {
			return nil, fmt.Errorf("oauthtest: signing %s: %w", alg, err)
		}
		var rs struct{ R, S *big.Int }
		if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 {
			return nil, fmt.Errorf("oauthtest: signing %s: signer returned a malformed ECDSA signature", alg)
		}
		size := (spec.curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*size)
		rs.R.FillBytes(sig[:size])
		rs.S.FillBytes(sig[size:])
		return sig, nil
	default: // OKP
		if _, ok := pub.(ed25519.PublicKey); !ok {
			return nil, fmt.Errorf("oauthtest: %s needs an Ed25519 key, not %T", alg, pub)
		}
		sig, err := key.Sign(rand.Reader, input, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("oauthtest: signing %s: %w", alg, err)
		}
		return sig, nil
	}
}

func digest(h crypto.Hash, input []byte) []byte {
	d := h.New()
	d.Write(input)
	return d.Sum(nil)
}

func describeKey(pub crypto.PublicKey) string {
	if ec, ok := pub.(*ecdsa.PublicKey); ok {
		return "an ECDSA key on " + ec.Curve.Params().Name
	}
	return fmt.Sprintf("%T", pub)
}
