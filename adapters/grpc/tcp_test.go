package tggrpc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokenguard/tokenguard/oauthtest"
)

// serveTCP serves srv on a fresh port of 127.0.0.1 and returns a client
// connection to it with creds; both are closed when t ends.
func serveTCP(t testing.TB, srv *grpc.Server, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// The same server over a real TCP connection on loopback, unary and
// stream.
func TestOverTCP(t *testing.T) {
	as, g := newGuard(t, nil)
	srv, _ := newServer(g, testOptions())
	conn := serveTCP(t, srv, insecure.NewCredentials())
	tok := as.Mint(oauthtest.Claims{"sub": "alice", "scope": scopeWrite})
	if o := unary(t, conn, methodCreate, authMD(bearer(tok))); o.code != codes.OK || o.reply != "alice jwt" {
		t.Errorf("unary: %v %q", o.code, o.msg)
	}
	if o := stream(t, conn, methodWatch, authMD(bearer(tok))); o.code != codes.OK || o.reply != "alice jwt" {
		t.Errorf("stream: %v %q", o.code, o.msg)
	}
	if o := stream(t, conn, methodWatch, nil); o.code != codes.Unauthenticated || o.challenge() != wantChallenge(g, "", "") {
		t.Errorf("stream without a token: %v %q %q", o.code, o.msg, o.challenge())
	}
	if o := unary(t, conn, methodGet, authMD([]string{"Bearer " + tok, "Bearer " + tok})); o.code != codes.InvalidArgument {
		t.Errorf("two authorization values: %v %q", o.code, o.msg)
	}
}

// certificate makes a self-signed certificate for cn (and, for a server,
// 127.0.0.1) and the base64url SHA-256 thumbprint of its DER (RFC 8705
// x5t#S256).
func certificate(t testing.TB, cn string, server bool) (tls.Certificate, *x509.Certificate, string) {
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
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, base64.RawURLEncoding.EncodeToString(sum[:])
}

// Certificate-bound tokens (RFC 8705) over real mutual TLS on loopback:
// the token works only on a connection whose client certificate it is
// bound to, from the peer's credentials.TLSInfo.
func TestCertificateBoundTokenOverMutualTLS(t *testing.T) {
	as, g := newGuard(t, nil)
	serverCert, serverLeaf, _ := certificate(t, "orders", true)
	srv, rc := newServer(g, testOptions(), grpc.Creds(credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequestClientCert, // the token's binding is what is checked
		MinVersion:   tls.VersionTLS12,
	})))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	roots := x509.NewCertPool()
	roots.AddCert(serverLeaf)
	dial := func(cert *tls.Certificate) *grpc.ClientConn {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	alice, _, aliceThumb := certificate(t, "alice", false)
	mallory, _, _ := certificate(t, "mallory", false)
	bound := as.Mint(oauthtest.Claims{"sub": "alice", "cnf": map[string]any{"x5t#S256": aliceThumb}})
	aliceConn, malloryConn, anonConn := dial(&alice), dial(&mallory), dial(nil)

	for round := range 2 { // the second from the verified-token cache
		if o := unary(t, aliceConn, methodGet, authMD(bearer(bound))); o.code != codes.OK || o.reply != "alice jwt" {
			t.Fatalf("round %d, the bound certificate: %v %q %q", round, o.code, o.msg, o.challenge())
		}
		if p := rc.last.Load(); p.Binding.X5TS256 != aliceThumb {
			t.Errorf("Principal.Binding %+v", p.Binding)
		}
		if o := stream(t, aliceConn, methodWatch, authMD(bearer(bound))); o.code != codes.OK {
			t.Errorf("round %d, stream with the bound certificate: %v %q", round, o.code, o.msg)
		}
		for name, c := range map[string]struct {
			conn *grpc.ClientConn
			desc string
		}{
			"another certificate": {malloryConn, "certificate does not match token"},
			"no certificate":      {anonConn, "token requires proof of possession"},
		} {
			for _, kind := range []string{"unary", "stream"} {
				var o outcome
				if kind == "unary" {
					o = unary(t, c.conn, methodGet, authMD(bearer(bound)))
				} else {
					o = stream(t, c.conn, methodWatch, authMD(bearer(bound)))
				}
				if o.code != codes.Unauthenticated || o.msg != c.desc || o.challenge() != wantChallenge(g, "invalid_token", c.desc) {
					t.Errorf("round %d, %s, %s: %v %q %q", round, name, kind, o.code, o.msg, o.challenge())
				}
			}
		}
	}
	// An unbound token works from any client certificate, or none.
	for _, conn := range []*grpc.ClientConn{malloryConn, anonConn} {
		if o := unary(t, conn, methodGet, authMD(bearer(as.Mint(oauthtest.Claims{"sub": "bob"})))); o.code != codes.OK || o.reply != "bob jwt" {
			t.Errorf("unbound token: %v %q", o.code, o.msg)
		}
	}
	// Over a connection without TLS, the bound token is refused.
	plainSrv, _ := newServer(g, testOptions())
	plain := serveTCP(t, plainSrv, insecure.NewCredentials())
	if o := unary(t, plain, methodGet, authMD(bearer(bound))); o.code != codes.Unauthenticated || o.msg != "token requires proof of possession" {
		t.Errorf("without TLS: %v %q", o.code, o.msg)
	}
}
