package oauthtest

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DPoPKey is a client's key pair for DPoP (RFC 9449): it signs the proof a
// client sends with each request, and a token is bound to it by its RFC
// 7638 thumbprint in cnf.jkt ([DPoPKey.Bind]). Its thumbprint is computed
// here from the standard library alone, so it checks the Guard's own.
type DPoPKey struct {
	alg    string
	signer crypto.Signer
	jwk    map[string]any // the public key's members, nothing else
	jkt    string
}

// NewDPoPKey generates a key for alg: ES256, ES384, ES512, RS256, RS384,
// RS512, PS256, PS384, PS512 or EdDSA. It panics on any other alg, as on
// any set-up error in a test.
func NewDPoPKey(alg string) *DPoPKey {
	k := newSigningKey(alg)
	jwk := publicJWK(k.signer.Public(), "", alg)
	delete(jwk, "kid")
	delete(jwk, "alg")
	delete(jwk, "use")
	return &DPoPKey{alg: alg, signer: k.signer, jwk: jwk, jkt: jwkThumbprint(jwk)}
}

// jwkThumbprint is the RFC 7638 thumbprint of a public JWK: SHA-256 of the
// required members in lexicographic order, no whitespace, unpadded
// base64url.
func jwkThumbprint(jwk map[string]any) string {
	var required []string
	switch jwk["kty"] {
	case "EC":
		required = []string{"crv", "kty", "x", "y"}
	case "RSA":
		required = []string{"e", "kty", "n"}
	default: // OKP
		required = []string{"crv", "kty", "x"}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range required {
		if i > 0 {
			b.WriteByte(',')
		}
		v, _ := json.Marshal(jwk[name]) // strings of base64url and names: nothing to escape
		fmt.Fprintf(&b, "%q:%s", name, v)
	}
	b.WriteByte('}')
	sum := sha256.Sum256(b.Bytes())
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Algorithm is the alg the key signs proofs with.
func (k *DPoPKey) Algorithm() string { return k.alg }

// Thumbprint is the key's RFC 7638 SHA-256 thumbprint, the cnf.jkt of the
// tokens bound to it.
func (k *DPoPKey) Thumbprint() string { return k.jkt }

// Public is the key's public half.
func (k *DPoPKey) Public() crypto.PublicKey { return k.signer.Public() }

// Bind returns a copy of claims whose cnf (RFC 7800) binds the token to
// the key, {"jkt": thumbprint}, keeping any other confirmation member
// claims already has. Mint(key.Bind(claims)) is a DPoP-bound JWT;
// MintOpaque(key.Bind(claims)) an opaque token whose introspection answer
// says it is bound (RFC 9449 §6.2).
func (k *DPoPKey) Bind(claims Claims) Claims {
	return withConfirmation(claims, "jkt", k.jkt)
}

// BindCertificate returns a copy of claims whose cnf binds the token to
// the client certificate cert (RFC 8705 §3.1): {"x5t#S256": the unpadded
// base64url SHA-256 of its DER}, keeping any other confirmation member.
// The token is then accepted only over a connection that presents cert.
func BindCertificate(claims Claims, cert *x509.Certificate) Claims {
	sum := sha256.Sum256(cert.Raw)
	return withConfirmation(claims, "x5t#S256", base64.RawURLEncoding.EncodeToString(sum[:]))
}

func withConfirmation(claims Claims, member, value string) Claims {
	out := make(Claims, len(claims)+1)
	for name, v := range claims {
		out[name] = v
	}
	cnf := map[string]any{}
	if old, ok := claims["cnf"].(map[string]any); ok {
		for name, v := range old {
			cnf[name] = v
		}
	}
	cnf[member] = value
	out["cnf"] = cnf
	return out
}

// ProofOptions controls [DPoPKey.ProofWith]. Zero fields take the value a
// well-behaved client sends.
type ProofOptions struct {
	// Method is the request's method (htm). It defaults to GET.
	Method string
	// URL is the request's URL (htu); its query and fragment are dropped,
	// as RFC 9449 §4.2 says.
	URL string
	// Token is the access token the proof is sent with: its hash is the
	// ath claim. Empty leaves ath out (a proof for a token request).
	Token string
	// Nonce is the server's DPoP-Nonce, sent as the nonce claim. Empty
	// leaves it out.
	Nonce string
	// IssuedAt is iat. It defaults to now.
	IssuedAt time.Time
	// ID is jti. It defaults to a fresh random string.
	ID string
	// Header and Claims are merged into the proof's header {typ, alg, jwk}
	// and claims {jti, htm, htu, iat, ath, nonce}: a nil value removes an
	// entry, so a test can forge any proof. The proof is still signed
	// with the key.
	Header map[string]any
	Claims Claims
}

// Proof returns a fresh proof (a new jti, iat now) for a request of
// method to url that carries token. It panics if signing fails.
func (k *DPoPKey) Proof(method, url, token string) string {
	return k.ProofWith(ProofOptions{Method: method, URL: url, Token: token})
}

// ProofWith returns a proof as o describes. It panics if signing fails.
func (k *DPoPKey) ProofWith(o ProofOptions) string {
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	if o.IssuedAt.IsZero() {
		o.IssuedAt = time.Now()
	}
	if o.ID == "" {
		o.ID = randomID()
	}
	htu := o.URL
	if i := strings.IndexAny(htu, "?#"); i >= 0 {
		htu = htu[:i]
	}
	header := map[string]any{"typ": "dpop+jwt", "alg": k.alg, "jwk": k.jwk}
	merge(header, o.Header)
	claims := map[string]any{"jti": o.ID, "htm": o.Method, "htu": htu, "iat": o.IssuedAt.Unix()}
	if o.Token != "" {
		sum := sha256.Sum256([]byte(o.Token))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	if o.Nonce != "" {
		claims["nonce"] = o.Nonce
	}
	merge(claims, o.Claims)
	p, err := SignJWT(header, claims, k.signer, k.alg)
	if err != nil {
		panic("oauthtest: signing a DPoP proof: " + err.Error())
	}
	return p
}

// DPoPClient returns an HTTP client that sends "Authorization: DPoP " +
// token and a fresh proof of key for each request, as a DPoP client does
// (RFC 9449 §7.1), unless the request has an Authorization header of its
// own, which is then sent as it is with no proof. The proof's htu is the
// request's URL, so the Guard's Config.DPoP.Origin must be the origin the
// client calls (for a server of httptest, its URL).
//
// It keeps the last DPoP-Nonce each host sent and puts it in later
// proofs; a 401 with error="use_dpop_nonce" and a DPoP-Nonce is sent once
// more with that nonce (§8.2), when the request's body can be sent again
// (none, or GetBody set, as http.NewRequest does for in-memory bodies).
// Headers are set on a clone: the caller's request is never changed.
//
// It uses the transport of [Server.Client], as [Server.BearerClient] does.
// DPoPClient panics if the server has not started.
func (s *Server) DPoPClient(key *DPoPKey, token string) *http.Client {
	if s.URL == "" {
		panic("oauthtest: DPoPClient before the server started")
	}
	base := s.Client().Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{Transport: &dpopTransport{base: base, key: key, token: token, nonces: map[string]string{}}}
}

type dpopTransport struct {
	base  http.RoundTripper
	key   *DPoPKey
	token string

	mu     sync.Mutex
	nonces map[string]string // host → the last DPoP-Nonce it sent
}

func (t *dpopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, ok := r.Header["Authorization"]; ok {
		return t.base.RoundTrip(r)
	}
	res, err := t.send(r)
	if err != nil || res.StatusCode != http.StatusUnauthorized || !strings.Contains(strings.Join(res.Header.Values("WWW-Authenticate"), ", "), `error="use_dpop_nonce"`) || res.Header.Get("DPoP-Nonce") == "" {
		return res, err
	}
	if r.Body != nil && r.Body != http.NoBody && r.GetBody == nil {
		return res, nil // the body is gone: the caller sees the 401
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	return t.send(r)
}

// send sends a clone of r with the credentials and a fresh proof, and
// remembers the DPoP-Nonce of the answer.
func (t *dpopTransport) send(r *http.Request) (*http.Response, error) {
	c := r.Clone(r.Context())
	if r.Body != nil && r.Body != http.NoBody && r.GetBody != nil {
		body, err := r.GetBody()
		if err != nil {
			return nil, fmt.Errorf("oauthtest: DPoPClient: %w", err)
		}
		c.Body = body
	}
	if c.Header == nil {
		c.Header = make(http.Header)
	}
	t.mu.Lock()
	nonce := t.nonces[r.URL.Host]
	t.mu.Unlock()
	u := *r.URL
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	c.Header.Set("Authorization", "DPoP "+t.token)
	c.Header.Set("DPoP", t.key.ProofWith(ProofOptions{Method: r.Method, URL: u.String(), Token: t.token, Nonce: nonce}))
	res, err := t.base.RoundTrip(c)
	if err == nil {
		if n := res.Header.Get("DPoP-Nonce"); n != "" {
			t.mu.Lock()
			t.nonces[r.URL.Host] = n
			t.mu.Unlock()
		}
	}
	return res, err
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (t *dpopTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
