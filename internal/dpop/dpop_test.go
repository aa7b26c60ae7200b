package dpop

import (
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// jwxThumbprint is the RFC 7638 thumbprint jwx computes for pub: an
// independent reference for ours.
func jwxThumbprint(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	k, err := jwk.Import(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(sum)
}

func TestVerifyValidProofs(t *testing.T) {
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"} {
		t.Run(alg, func(t *testing.T) {
			s := newSpec(t, alg)
			s.claims["nonce"] = "n-1"
			p, err := Verify(s.mint(t), testOptions())
			if err != nil {
				t.Fatal(err)
			}
			want := &Proof{
				Thumbprint: jwxThumbprint(t, s.signer.Public()),
				ID:         "e1j3V_bKic8-LAEB",
				IssuedAt:   testNow,
				Expires:    testNow.Add(DefaultWindow),
				Nonce:      "n-1",
				Algorithm:  alg,
			}
			if *p != *want {
				t.Errorf("Verify = %+v, want %+v", *p, *want)
			}
		})
	}
}

// Members Verify does not read change nothing: kid and other header
// parameters, optional JWK members (kid, use sig, key_ops verify, its
// own alg), claims such as exp.
func TestVerifyIgnoresMembersItDoesNotRead(t *testing.T) {
	s := newSpec(t, "ES256")
	s.header["kid"] = "k1"
	s.header["x5t#S256"] = "ignored"
	s.jwk()["kid"] = "k1"
	s.jwk()["use"] = "sig"
	s.jwk()["key_ops"] = []string{"verify"}
	s.jwk()["alg"] = "ES256"
	s.claims["exp"] = testNow.Add(time.Minute).Unix()
	s.claims["client_id"] = "c1"
	p, err := Verify(s.mint(t), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if p.Thumbprint != jwxThumbprint(t, s.signer.Public()) {
		t.Errorf("thumbprint %s changed with optional members", p.Thumbprint)
	}
}

// Without an access token (a proof not presented with one), ath must be
// absent; see TestAttackATH for the refusals.
func TestVerifyWithoutAccessToken(t *testing.T) {
	s := newSpec(t, "EdDSA")
	delete(s.claims, "ath")
	o := testOptions()
	o.AccessToken = ""
	if _, err := Verify(s.mint(t), o); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDefaults(t *testing.T) {
	s := newSpec(t, "ES256")
	s.claims["iat"] = time.Now().Unix()
	o := testOptions()
	o.Now = time.Time{} // time.Now()
	p, err := Verify(s.mint(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if d := p.Expires.Sub(p.IssuedAt); d != DefaultWindow {
		t.Errorf("Expires - IssuedAt = %s, want %s", d, DefaultWindow)
	}
	o.Window = time.Minute
	o.Now = time.Now()
	if p, err = Verify(s.mint(t), o); err != nil {
		t.Fatal(err)
	}
	if d := p.Expires.Sub(p.IssuedAt); d != time.Minute {
		t.Errorf("Expires - IssuedAt = %s, want 1m", d)
	}
}

func TestOptionsErrors(t *testing.T) {
	proof := newSpec(t, "ES256").mint(t)
	for _, tc := range []struct {
		name string
		edit func(*Options)
	}{
		{"no method", func(o *Options) { o.Method = "" }},
		{"method not a token", func(o *Options) { o.Method = "PO ST" }},
		{"no URL", func(o *Options) { o.URL = "" }},
		{"relative URL", func(o *Options) { o.URL = "/api/orders" }},
		{"URL not http", func(o *Options) { o.URL = "ftp://rs.example/api/orders" }},
		{"URL with userinfo", func(o *Options) { o.URL = "https://u@rs.example/api/orders" }},
		{"negative window", func(o *Options) { o.Window = -time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			tc.edit(&o)
			_, err := Verify(proof, o)
			if !errors.Is(err, ErrOptions) || !oneOf(err) || Code(err) != "" {
				t.Fatalf("err = %v (code %q), want ErrOptions only", err, Code(err))
			}
		})
	}
}

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrInvalidProof, CodeInvalidProof},
		{invalid("x %d", 1), CodeInvalidProof},
		{ErrUseNonce, CodeUseNonce},
		{ErrNonceMissing, CodeUseNonce},
		{ErrNonceRejected, CodeUseNonce},
		{ErrOptions, ""},
		{errors.New("other"), ""},
	} {
		if got := Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if !strings.HasPrefix(invalid("x").Error(), "dpop: ") {
		t.Error("errors are not prefixed with the package name")
	}
}

func TestAcceptedAlgorithms(t *testing.T) {
	for _, tc := range []struct {
		algs []string
		want string
	}{
		{nil, "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"},
		{[]string{}, "RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"},
		{[]string{"ES256", "HS256", "none", "ES256", "EdDSA"}, "ES256 EdDSA"},
		{[]string{"HS256"}, ""},
	} {
		if got := strings.Join(Options{Algorithms: tc.algs}.AcceptedAlgorithms(), " "); got != tc.want {
			t.Errorf("AcceptedAlgorithms(%q) = %q, want %q", tc.algs, got, tc.want)
		}
	}
}
