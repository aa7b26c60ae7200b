package oauthtest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// A token bound with DPoPKey.Bind is accepted with the key's proofs, for
// every proof algorithm, on the JWT and the introspection path: the
// thumbprint oauthtest computes is the one the Guard computes.
func TestDPoPKeyBindsTokens(t *testing.T) {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	as.RegisterClient("rs", "rs secret")
	cfg := as.GuardConfig()
	cfg.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: "https://api.example"}
	cfg.Introspection = tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "rs secret"}
	g := newGuard(t, cfg)
	for _, alg := range []string{"ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"} {
		key := oauthtest.NewDPoPKey(alg)
		if key.Algorithm() != alg || len(key.Thumbprint()) != 43 {
			t.Fatalf("%s: alg %q, thumbprint %q", alg, key.Algorithm(), key.Thumbprint())
		}
		for kind, token := range map[string]string{
			"jwt":    as.Mint(key.Bind(oauthtest.Claims{"sub": "alice"})),
			"opaque": as.MintOpaque(key.Bind(oauthtest.Claims{"sub": "alice"})),
		} {
			r := httptest.NewRequest("POST", "/orders?x=1", nil)
			r.Header.Set("Authorization", "DPoP "+token)
			r.Header.Set("DPoP", key.Proof("POST", "https://api.example/orders?ignored#too", token))
			p, err := g.Authenticate(r)
			if err != nil {
				t.Fatalf("%s %s: %v", alg, kind, err)
			}
			if p.Binding.JKT != key.Thumbprint() {
				t.Errorf("%s %s: bound to %q, want %q", alg, kind, p.Binding.JKT, key.Thumbprint())
			}
			// The same token with a forged proof: another method.
			r.Header.Set("DPoP", key.ProofWith(oauthtest.ProofOptions{Method: "POST", URL: "https://api.example/orders", Token: token, Claims: oauthtest.Claims{"htm": "GET"}}))
			if _, err := g.Authenticate(r); err == nil {
				t.Errorf("%s %s: a proof for GET accepted on POST", alg, kind)
			}
		}
	}
}

// Bind keeps the other confirmation members, and neither Bind nor
// BindCertificate changes the claims they are given.
func TestBindKeepsOtherMembers(t *testing.T) {
	key := oauthtest.NewDPoPKey("ES256")
	cert := selfSigned(t)
	in := oauthtest.Claims{"sub": "alice", "cnf": map[string]any{"kid": "k1"}}
	out := oauthtest.BindCertificate(key.Bind(in), cert)
	cnf := out["cnf"].(map[string]any)
	if cnf["kid"] != "k1" || cnf["jkt"] != key.Thumbprint() || len(cnf["x5t#S256"].(string)) != 43 || out["sub"] != "alice" {
		t.Fatalf("cnf %v", out)
	}
	if len(in["cnf"].(map[string]any)) != 1 {
		t.Fatalf("the input was changed: %v", in)
	}
}

// A certificate-bound token is accepted with its certificate only.
func TestBindCertificate(t *testing.T) {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	mine, theirs := selfSigned(t), selfSigned(t)
	presented := mine
	cfg := as.GuardConfig()
	cfg.ClientCertificate = func(*http.Request) (*x509.Certificate, error) { return presented, nil }
	g := newGuard(t, cfg)
	token := as.Mint(oauthtest.BindCertificate(oauthtest.Claims{"sub": "svc"}, mine))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	if p, err := g.Authenticate(r); err != nil || p.Binding.X5TS256 == "" {
		t.Fatalf("with its certificate: %v", err)
	}
	presented = theirs
	if _, err := g.Authenticate(r); err == nil || !strings.Contains(err.Error(), "certificate does not match token") {
		t.Fatalf("with another certificate: %v", err)
	}
}

func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewDPoPKey refuses what it cannot sign with.
func TestNewDPoPKeyRefusesHMAC(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewDPoPKey(HS256) did not panic")
		}
	}()
	oauthtest.NewDPoPKey("HS256")
}
