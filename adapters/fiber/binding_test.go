package tgfiber_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"

	"github.com/tokenguard/tokenguard"
	tgfiber "github.com/tokenguard/tokenguard/adapters/fiber"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// newCert returns a self-signed certificate for name, and its key pair for
// tls.
func newCert(t *testing.T, name string, server bool) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}
}

// Certificate-bound tokens (RFC 8705) over Fiber serving mutual TLS: the
// request the core judges carries the connection's TLS state, so a token
// bound to the certificate the client presented passes, and the same token
// from a client with another certificate, or none, is refused.
func TestCertificateBoundOverTLS(t *testing.T) {
	as, g := newGuard(t)
	serverCert, serverPair := newCert(t, "127.0.0.1", true)
	aliceCert, alicePair := newCert(t, "alice", false)
	_, malloryPair := newCert(t, "mallory", false)

	app := fiber.New()
	app.Use(tgfiber.New(g))
	app.Get("/any", func(c fiber.Ctx) error {
		p, _ := tgfiber.PrincipalFrom(c)
		return c.SendString(p.Subject + " " + p.Binding.X5TS256)
	})
	base := serve(t, app, &tls.Config{
		Certificates: []tls.Certificate{serverPair},
		ClientAuth:   tls.RequestClientCert, // the token's binding is the check, not a CA
		MinVersion:   tls.VersionTLS12,
	})
	roots := x509.NewCertPool()
	roots.AddCert(serverCert)
	client := func(pair *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if pair != nil {
			cfg.Certificates = []tls.Certificate{*pair}
		}
		tr := &http.Transport{TLSClientConfig: cfg}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}

	bound := as.Mint(oauthtest.BindCertificate(oauthtest.Claims{"sub": "alice"}, aliceCert))
	header := http.Header{"Authorization": {"Bearer " + bound}}
	for _, tc := range []struct {
		name   string
		client *http.Client
		status int
		desc   string
	}{
		{"the bound certificate", client(&alicePair), 200, ""},
		{"another certificate", client(&malloryPair), 401, "certificate does not match token"},
		{"no certificate", client(nil), 401, "token requires proof of possession"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := get(t, tc.client, base+"/any", header)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if tc.status == 200 {
				if p, _ := g.Authenticate(boundRequest(bound, aliceCert)); body != "alice "+p.Binding.X5TS256 {
					t.Errorf("handler saw %q", body)
				}
				return
			}
			if got, want := res.Header.Get("WWW-Authenticate"), challenge(g, "invalid_token", tc.desc); got != want {
				t.Errorf("WWW-Authenticate %q, want %q", got, want)
			}
		})
	}
}

// boundRequest is a net/http request with token and a mutual-TLS state
// presenting cert, for the core's own view of the same token.
func boundRequest(token string, cert *x509.Certificate) *http.Request {
	r := &http.Request{Method: "GET", URL: &url.URL{Path: "/any"}, Header: http.Header{"Authorization": {"Bearer " + token}}, Host: "x"}
	r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	return r
}

// A Fiber middleware in front that removes a header (here the one a
// TLS-terminating proxy would set, forged by the client) has its way: the
// core sees the request as that middleware left it, not as the bytes
// arrived, so a forged certificate header that is stripped cannot vouch for
// a bound token.
func TestFrontMiddlewareStripsForgedHeader(t *testing.T) {
	as, g := newGuard(t, func(c *tokenguard.Config) {
		c.ClientCertificate = tokenguard.ForwardedClientCertificate("X-Client-Cert")
	})
	aliceCert, _ := newCert(t, "alice", false)
	bound := as.Mint(oauthtest.BindCertificate(oauthtest.Claims{"sub": "alice"}, aliceCert))
	pemHeader := url.QueryEscape(string(pemEncode(aliceCert)))

	for _, strip := range []bool{false, true} {
		app := fiber.New()
		if strip {
			app.Use(func(c fiber.Ctx) error {
				c.Request().Header.Del("X-Client-Cert")
				return c.Next()
			})
		}
		app.Use(tgfiber.New(g))
		app.Get("/any", subject)
		base := serve(t, app, nil)
		res, body := get(t, http.DefaultClient, base+"/any", http.Header{"Authorization": {"Bearer " + bound}, "X-Client-Cert": {pemHeader}})
		want := 200
		if strip {
			want = 401
		}
		if res.StatusCode != want {
			t.Errorf("strip %v: status %d, want %d (%s)", strip, res.StatusCode, want, body)
		}
	}
}

func pemEncode(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}
