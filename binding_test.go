package tokenguard_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// clientCert makes a self-signed client certificate and its thumbprint.
func clientCert(t *testing.T, cn string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, base64.RawURLEncoding.EncodeToString(sum[:])
}

// Certificate-bound tokens (RFC 8705 §3) over real mutual TLS on
// loopback: the token works only from the client holding the
// certificate it is bound to.
func TestCertificateBoundTokens(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	var seen reached
	srv := httptest.NewUnstartedServer(g.Handler(seen.handler()))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()

	alice, aliceThumb := clientCert(t, "alice")
	mallory, _ := clientCert(t, "mallory")
	bound := as.Mint(oauthtest.Claims{"sub": "alice", "cnf": map[string]any{"x5t#S256": aliceThumb}})
	send := func(cert *tls.Certificate, token string) *http.Response {
		t.Helper()
		c := srv.Client()
		tr := c.Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		c = &http.Client{Transport: tr}
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for round := range 2 { // the second round comes from the verified-token cache
		seen = reached{}
		if resp := send(&alice, bound); resp.StatusCode != 200 || seen.principal == nil || seen.principal.Binding.X5TS256 != aliceThumb {
			t.Fatalf("round %d, the bound certificate: %d %+v", round, resp.StatusCode, seen.principal)
		}
		for what, cert := range map[string]*tls.Certificate{"another certificate": &mallory, "no certificate": nil} {
			resp := send(cert, bound)
			want := wantChallenge(g, "invalid_token", "certificate does not match token")
			if cert == nil {
				want = wantChallenge(g, "invalid_token", "token requires proof of possession")
			}
			if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
				t.Errorf("round %d, %s: %d %q", round, what, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// Plain HTTP (no TLS at all): refused.
	if w := call(g.Handler(okHandler), "Bearer "+bound); w.Code != 401 {
		t.Errorf("without TLS: %d", w.Code)
	}
	// An unbound token still works with or without a certificate.
	if resp := send(&mallory, as.Mint(nil)); resp.StatusCode != 200 {
		t.Errorf("bearer token over mTLS: %d", resp.StatusCode)
	}
	// Bindings this Guard cannot check are refused before any key is used.
	for name, cnf := range map[string]any{
		"jwk":        map[string]any{"jwk": map[string]any{"kty": "EC"}},
		"jkt (DPoP)": map[string]any{"jkt": "abc"},
		"empty":      map[string]any{},
		"not object": "x5t",
		"extra":      map[string]any{"x5t#S256": aliceThumb, "kid": "k"},
	} {
		resp := send(&alice, as.Mint(oauthtest.Claims{"cnf": cnf}))
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != wantChallenge(g, "invalid_token", "token requires proof of possession") {
			t.Errorf("cnf %s: %d %q", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

// Behind a TLS-terminating proxy, the certificate comes from the header
// the proxy sets, and only when the Guard is told to trust it.
func TestForwardedClientCertificate(t *testing.T) {
	as := shared(t)
	alice, aliceThumb := clientCert(t, "alice")
	mallory, _ := clientCert(t, "mallory")
	pemOf := func(c tls.Certificate) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
	}
	bound := as.Mint(oauthtest.Claims{"cnf": map[string]any{"x5t#S256": aliceThumb}})
	trusting := newGuard(t, as, tokenguard.Config{ClientCertificate: tokenguard.ForwardedClientCertificate("X-Client-Cert")})
	xfcc := newGuard(t, as, tokenguard.Config{ClientCertificate: tokenguard.ForwardedClientCertificate("X-Forwarded-Client-Cert")})
	plain := newGuard(t, as, tokenguard.Config{})
	for _, c := range []struct {
		what   string
		g      *tokenguard.Guard
		header string
		value  []string
		status int
	}{
		{"nginx escaped PEM", trusting, "X-Client-Cert", []string{url.QueryEscape(pemOf(alice))}, 200},
		{"wrong certificate", trusting, "X-Client-Cert", []string{url.QueryEscape(pemOf(mallory))}, 401},
		{"no header", trusting, "", nil, 401},
		{"header twice", trusting, "X-Client-Cert", []string{url.QueryEscape(pemOf(alice)), url.QueryEscape(pemOf(alice))}, 401},
		{"garbage", trusting, "X-Client-Cert", []string{"not a certificate"}, 401},
		{"Envoy XFCC", xfcc, "X-Forwarded-Client-Cert", []string{`By=spiffe://proxy;Hash=abc;Cert="` + url.QueryEscape(pemOf(alice)) + `";Subject="CN=alice"`}, 200},
		{"XFCC two elements", xfcc, "X-Forwarded-Client-Cert", []string{`Cert="` + url.QueryEscape(pemOf(mallory)) + `",Cert="` + url.QueryEscape(pemOf(alice)) + `"`}, 401},
		{"header not trusted", plain, "X-Client-Cert", []string{url.QueryEscape(pemOf(alice))}, 401},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+bound)
		for _, v := range c.value {
			r.Header.Add(c.header, v)
		}
		w := httptest.NewRecorder()
		c.g.Handler(okHandler).ServeHTTP(w, r)
		if w.Code != c.status {
			t.Errorf("%s: %d %q", c.what, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}

// An opaque token whose introspection answer carries cnf is bound too.
func TestCertificateBoundOpaqueToken(t *testing.T) {
	_, aliceThumb := clientCert(t, "alice")
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	tok := as.MintOpaque(oauthtest.Claims{"cnf": map[string]any{"x5t#S256": aliceThumb}})
	w := call(g.Handler(okHandler), "Bearer "+tok)
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != wantChallenge(g, "invalid_token", "token requires proof of possession") {
		t.Errorf("bound opaque token without a certificate: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}
