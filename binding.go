package tokenguard

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Binding says what a token is bound to (its cnf claim or introspection
// member, RFC 7800): a sender-constrained token is worth nothing without
// proof of possession of that key or certificate, so a stolen one does
// not work for whoever holds it.
type Binding struct {
	// JKT is cnf.jkt: the RFC 7638 thumbprint of the DPoP key the token is
	// bound to (RFC 9449); empty when it is not DPoP-bound.
	JKT string
	// X5TS256 is cnf["x5t#S256"]: the base64url SHA-256 thumbprint of the
	// client certificate the token is bound to (RFC 8705 §3); empty when
	// it is not certificate-bound. The Guard checks it against the
	// request's client certificate (Config.ClientCertificate).
	X5TS256 string
}

// Bound reports whether the token is sender-constrained.
func (b Binding) Bound() bool { return b.JKT != "" || b.X5TS256 != "" }

// maxConfirmationBytes bounds a cnf member.
const maxConfirmationBytes = 2048

// parseBinding reads a cnf object. Only the confirmation methods checked
// here are understood: any other member (jwk, jku, kid) binds the token
// to something this Guard cannot check, so it is an error.
func parseBinding(raw []byte) (Binding, error) {
	if len(raw) > maxConfirmationBytes {
		return Binding{}, errors.New("cnf is too large")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return Binding{}, errors.New("cnf is not an object")
	}
	var b Binding
	for name, v := range m {
		var s string
		switch name {
		case "jkt":
			if json.Unmarshal(v, &s) != nil || s == "" {
				return Binding{}, errors.New("cnf.jkt is not a string")
			}
			b.JKT = s
		case "x5t#S256":
			if json.Unmarshal(v, &s) != nil || s == "" {
				return Binding{}, errors.New("cnf x5t#S256 is not a string")
			}
			b.X5TS256 = s
		default:
			return Binding{}, fmt.Errorf("cnf confirmation method %s is not supported", quote(name))
		}
	}
	if !b.Bound() {
		return Binding{}, errors.New("cnf names no confirmation method")
	}
	return b, nil
}

// errBound is the refusal of a bound token whose binding cannot be
// checked here.
func errBound(cause error) *Error {
	return errInvalidToken("token requires proof of possession", cause)
}

// bindingOf judges a token's cnf: the Binding the request must then
// prove, or a refusal. With InsecureIgnoreTokenBinding the token is taken
// as a bearer token.
func (g *Guard) bindingOf(raw []byte, where string) (Binding, *Error) {
	if g.cfg.InsecureIgnoreTokenBinding {
		return Binding{}, nil
	}
	b, err := parseBinding(raw)
	if err != nil {
		return Binding{}, errBound(fmt.Errorf("%s: %w", where, err))
	}
	if b.JKT != "" && g.dpop == nil {
		// DPoP proofs are not checked yet: without one, a DPoP-bound
		// token proves nothing about who sends it.
		return Binding{}, errBound(fmt.Errorf("%s: a DPoP-bound token (cnf.jkt), and DPoP proofs are not checked; set InsecureIgnoreTokenBinding to accept such tokens as bearer tokens", where))
	}
	return b, nil
}

// checkBinding makes the request prove possession of what p's token is
// bound to.
func (g *Guard) checkBinding(r *http.Request, p *Principal) *Error {
	b := p.Binding
	if b.X5TS256 == "" {
		return nil
	}
	cert, err := g.clientCertificate(r)
	if err != nil {
		return errBound(fmt.Errorf("a certificate-bound token (RFC 8705) and %w", err))
	}
	sum := sha256.Sum256(cert.Raw)
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(b.X5TS256)) != 1 {
		return errInvalidToken("certificate does not match token", errors.New("the client certificate's SHA-256 thumbprint is not the token's cnf x5t#S256"))
	}
	return nil
}

// clientCertificate is the certificate the client presented: from the
// configured source, or from the request's own TLS connection.
func (g *Guard) clientCertificate(r *http.Request) (*x509.Certificate, error) {
	if src := g.cfg.ClientCertificate; src != nil {
		cert, err := src(r)
		if err != nil {
			return nil, fmt.Errorf("the client certificate cannot be read: %w", err)
		}
		if cert == nil {
			return nil, errors.New("the request has no client certificate")
		}
		return cert, nil
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, errors.New("the request has no client certificate (no mutual TLS)")
	}
	return r.TLS.PeerCertificates[0], nil
}

// ForwardedClientCertificate reads the client certificate that a
// TLS-terminating proxy forwards in the request header name: Envoy's
// X-Forwarded-Client-Cert (its Cert="..." element) or a URL-escaped PEM
// (nginx's $ssl_client_escaped_cert, HAProxy, most others). Use it as
// Config.ClientCertificate only behind a proxy that sets the header on
// every request and removes it from what clients send: whoever can set
// it can claim any certificate. A header sent twice, or an XFCC value
// with more than one element, is refused.
func ForwardedClientCertificate(name string) func(r *http.Request) (*x509.Certificate, error) {
	return func(r *http.Request) (*x509.Certificate, error) {
		vals := r.Header.Values(name)
		switch len(vals) {
		case 0:
			return nil, nil
		case 1:
		default:
			return nil, fmt.Errorf("header %s sent %d times", name, len(vals))
		}
		v := strings.TrimSpace(vals[0])
		if v == "" {
			return nil, nil
		}
		if strings.Contains(v, "Cert=") || strings.Contains(v, "Hash=") || strings.Contains(v, "By=") {
			var err error
			if v, err = xfccCert(v); err != nil {
				return nil, err
			}
		}
		pemText, err := url.QueryUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", name, err)
		}
		block, rest := pem.Decode([]byte(pemText))
		if block == nil || block.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
			return nil, fmt.Errorf("header %s does not hold one PEM certificate", name)
		}
		return x509.ParseCertificate(block.Bytes)
	}
}

// xfccCert returns the Cert value of a one-element XFCC header.
func xfccCert(v string) (string, error) {
	// Elements are separated by commas outside quotes; one is expected.
	inQuote := false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				return "", errors.New("X-Forwarded-Client-Cert has more than one element")
			}
		}
	}
	for _, kv := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if strings.EqualFold(k, "Cert") {
			return strings.Trim(val, `"`), nil
		}
	}
	return "", errors.New("X-Forwarded-Client-Cert has no Cert element")
}
