package tokenguard_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func b64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// publicKeyPEM fetches the server's first RSA JWK and encodes it as PEM, the
// bytes an attacker uses as an HMAC secret in the classic alg confusion.
func publicKeyPEM(t *testing.T, as *oauthtest.Server) []byte {
	resp, err := http.Get(as.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kty, N, E string } `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.Kty == "RSA" {
			n, _ := base64.RawURLEncoding.DecodeString(k.N)
			pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
			der, err := x509.MarshalPKIXPublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		}
	}
	t.Fatal("no RSA key published")
	return nil
}

func TestValidTokensPass(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		t.Run(alg, func(t *testing.T) {
			exp := time.Now().Add(10 * time.Minute).Truncate(time.Second)
			tok := as.MintWith(oauthtest.MintOptions{Alg: alg, Claims: oauthtest.Claims{
				"sub": "alice", "client_id": "app-7", "scope": "orders:read orders:write", "scp": []string{"admin", "orders:read"},
				"exp": exp.Unix(), "tenant": "acme",
			}})
			var rc reached
			w := call(g.Handler(rc.handler()), "Bearer "+tok)
			if w.Code != 200 || !rc.called {
				t.Fatalf("status %d, reached %v, WWW-Authenticate %q", w.Code, rc.called, w.Header().Get("WWW-Authenticate"))
			}
			p := rc.principal
			if p.Subject != "alice" || p.ClientID != "app-7" || p.Issuer != as.Issuer || p.Kind != tokenguard.KindJWT {
				t.Errorf("principal %+v", p)
			}
			if got := strings.Join(p.Scopes, " "); got != "orders:read orders:write admin" {
				t.Errorf("scopes %q", got)
			}
			if len(p.Audience) != 1 || p.Audience[0] != as.Resource() || !p.Expiry.Equal(exp) {
				t.Errorf("audience %v expiry %v", p.Audience, p.Expiry)
			}
			var extra struct{ Tenant string }
			if err := p.Claims(&extra); err != nil || extra.Tenant != "acme" {
				t.Errorf("Claims: %+v %v", extra, err)
			}
		})
	}
}

func TestAttackerTokensRejected(t *testing.T) {
	as := shared(t)
	// A second server: its own keys, its own issuer, never trusted.
	rogue := newAS(t, oauthtest.Options{})
	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		http.Redirect(w, r, rogue.JWKSURL(), http.StatusFound)
	}))
	defer attacker.Close()

	g := newGuard(t, as, tokenguard.Config{})
	rsaKid := as.KeyIDs()[0]
	forger, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now()
	good := func() map[string]any {
		return map[string]any{"iss": as.Issuer, "aud": as.Resource(), "sub": "mallory", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	}
	sign := func(header map[string]any, claims map[string]any) string {
		tok, err := oauthtest.SignJWT(header, claims, forger, "RS256")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := as.Mint(nil)
	parts := strings.Split(valid, ".")
	hmacToken := func() string {
		key := publicKeyPEM(t, as)
		in := b64(map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": rsaKid}) + "." + b64(good())
		m := hmac.New(sha256.New, key)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}()
	tampered := func() string {
		claims := good()
		claims["sub"] = "admin"
		return parts[0] + "." + b64(claims) + "." + parts[2]
	}()

	for _, tc := range []struct {
		name, token, desc string
	}{
		// Recognisably a JWS, so judged locally, never introspected.
		{"alg none, empty signature", b64(map[string]any{"alg": "none"}) + "." + b64(good()) + ".", "signature algorithm not allowed"},
		{"alg none, some signature", b64(map[string]any{"alg": "none"}) + "." + b64(good()) + ".AAAA", "signature algorithm not allowed"},
		{"HS256 signed with the RSA public key", hmacToken, "signature algorithm not allowed"},
		{"header alg differs from the key's alg", as.MintWith(oauthtest.MintOptions{Alg: "RS256", Header: map[string]any{"alg": "PS256"}}), "unknown signing key"},
		{"ES256 header on the RSA kid", as.MintWith(oauthtest.MintOptions{Alg: "ES256", Header: map[string]any{"kid": rsaKid}}), "unknown signing key"},
		{"tampered payload", tampered, "invalid signature"},
		{"right kid, wrong key", sign(map[string]any{"alg": "RS256", "kid": rsaKid, "typ": "at+jwt"}, good()), "invalid signature"},
		{"expired", as.Mint(oauthtest.Claims{"exp": now.Add(-time.Hour).Unix(), "iat": now.Add(-2 * time.Hour).Unix()}), "token expired"},
		{"expired beyond leeway", as.Mint(oauthtest.Claims{"exp": now.Add(-31 * time.Second).Unix()}), "token expired"},
		{"nbf in the future", as.Mint(oauthtest.Claims{"nbf": now.Add(time.Hour).Unix()}), "token not yet valid"},
		{"iat in the future", as.Mint(oauthtest.Claims{"iat": now.Add(time.Hour).Unix()}), "token issued in the future"},
		{"wrong iss", as.Mint(oauthtest.Claims{"iss": as.Issuer + "/other"}), "untrusted issuer"},
		{"issuer not trusted", rogue.Mint(oauthtest.Claims{"aud": as.Resource()}), "untrusted issuer"},
		{"wrong aud", as.Mint(oauthtest.Claims{"aud": "https://other.example"}), "token not meant for this resource"},
		{"aud empty array", as.Mint(oauthtest.Claims{"aud": []string{}}), "token not meant for this resource"},
		{"no aud", as.Mint(oauthtest.Claims{"aud": nil}), "token not meant for this resource"},
		{"no exp", as.Mint(oauthtest.Claims{"exp": nil}), "token has no expiry"},
		{"EXP instead of exp", as.Mint(oauthtest.Claims{"exp": nil, "EXP": now.Add(time.Hour).Unix()}), "token has no expiry"},
		// Names equal under case folding: refused whatever they hold.
		{"AUD shadowing a wrong aud", as.Mint(oauthtest.Claims{"aud": "https://other.example", "AUD": as.Resource()}), "malformed token"},
		{"typ of a logout token", as.MintWith(oauthtest.MintOptions{Header: map[string]any{"typ": "logout+jwt"}}), "token type not accepted"},
		{"typ of a DPoP proof", as.MintWith(oauthtest.MintOptions{Header: map[string]any{"typ": "dpop+jwt"}}), "token type not accepted"},
		{"typ JOSE", as.MintWith(oauthtest.MintOptions{Header: map[string]any{"typ": "JOSE"}}), "token type not accepted"},
		{"unknown crit", as.MintWith(oauthtest.MintOptions{Header: map[string]any{"crit": []string{"exp"}, "exp": 1}}), "unsupported critical header"},
		{"jku to an attacker's key set", sign(map[string]any{"alg": "RS256", "kid": "attacker", "jku": attacker.URL}, good()), "unknown signing key"},
		{"x5u to an attacker", sign(map[string]any{"alg": "RS256", "kid": "attacker2", "x5u": attacker.URL}, good()), "unknown signing key"},
		{"embedded jwk", sign(map[string]any{"alg": "RS256", "jwk": map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(forger.N.Bytes()), "e": "AQAB"}}, good()), "invalid signature"},
		{"three garbage parts", "abc.def.ghi", "token is not a JWT"},
		{"garbage after a JSON-looking header", "eyJhbGciOiJSUzI1NiJ9.e30~.xxx", "malformed token"},
		{"payload not JSON", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("[1,2]")) + "." + parts[2], "malformed token"},
		{"five parts (JWE)", "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", "token is not a JWT"},
		{"1 MiB token", "ey" + strings.Repeat("A", 1<<20), "token too large"},
		{"signature stripped", parts[0] + "." + parts[1] + ".", "malformed token"},
		{"signature not base64url", parts[0] + "." + parts[1] + ".AB+/", "malformed token"},
		{"signature with padding", valid + "==", "malformed token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rc reached
			w := call(g.Handler(rc.handler()), "Bearer "+tc.token)
			if w.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", w.Code)
			}
			if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", tc.desc); got != want {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, want)
			}
			if rc.called {
				t.Error("handler reached")
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["error"] != "invalid_token" {
				t.Errorf("body %q (%v)", w.Body.String(), err)
			}
			if strings.Contains(w.Body.String(), tc.token[:min(len(tc.token), 40)]) {
				t.Error("response echoes the token")
			}
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the jku/x5u server received %d requests, want 0", n)
	}
	if n := rogue.Requests("jwks") + rogue.Requests("server_metadata") + rogue.Requests("openid_configuration"); n != 0 {
		t.Errorf("the untrusted issuer received %d requests, want 0", n)
	}
}

func TestTypPolicy(t *testing.T) {
	as := shared(t)
	lenient := newGuard(t, as, tokenguard.Config{})
	strict := newGuard(t, as, tokenguard.Config{RequireATJWTType: true})
	for _, tc := range []struct {
		typ            any
		lenient, strct int
	}{
		{"at+jwt", 200, 200},
		{"application/at+jwt", 200, 200},
		{"AT+JWT", 200, 200},
		{"JWT", 200, 401},
		{"application/jwt", 200, 401},
		{nil, 200, 401},
		{"id_token+jwt", 401, 401},
		{"secevent+jwt", 401, 401},
	} {
		tok := as.MintWith(oauthtest.MintOptions{Header: map[string]any{"typ": tc.typ}})
		if w := call(lenient.Handler(http.NotFoundHandler()), "Bearer "+tok); w.Code != tc.lenient && !(w.Code == 404 && tc.lenient == 200) {
			t.Errorf("typ %v, default policy: %d, want %d", tc.typ, w.Code, tc.lenient)
		}
		if w := call(strict.Handler(http.NotFoundHandler()), "Bearer "+tok); w.Code != tc.strct && !(w.Code == 404 && tc.strct == 200) {
			t.Errorf("typ %v, strict policy: %d, want %d", tc.typ, w.Code, tc.strct)
		}
	}
}

func TestAudienceAndScopeShapes(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	for _, tc := range []struct {
		name   string
		claims oauthtest.Claims
		scopes string
	}{
		{"aud string", oauthtest.Claims{"aud": as.Resource()}, ""},
		{"aud array", oauthtest.Claims{"aud": []string{"https://x", as.Resource()}}, ""},
		{"scope only", oauthtest.Claims{"scope": "a b"}, "a b"},
		{"scp only", oauthtest.Claims{"scp": []string{"a", "b"}}, "a b"},
		{"scp as string", oauthtest.Claims{"scp": "a b"}, "a b"},
		{"both, overlapping", oauthtest.Claims{"scope": "a b", "scp": []string{"b", "c"}}, "a b c"},
		{"scope repeating itself", oauthtest.Claims{"scope": "a b  a b"}, "a b"},
		{"scp repeating itself", oauthtest.Claims{"scp": []string{"c", "c", "d"}}, "c d"},
		{"many, repeated", oauthtest.Claims{"scope": strings.Repeat("x y z ", 20) + "w"}, "x y z w"},
		{"neither", oauthtest.Claims{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rc reached
			w := call(g.Handler(rc.handler()), "Bearer "+as.Mint(tc.claims))
			if w.Code != 200 {
				t.Fatalf("status %d: %s", w.Code, w.Header().Get("WWW-Authenticate"))
			}
			if got := strings.Join(rc.principal.Scopes, " "); got != tc.scopes {
				t.Errorf("scopes %q, want %q", got, tc.scopes)
			}
		})
	}
}

func TestLeewayAndCustomClaims(t *testing.T) {
	as := shared(t)
	now := time.Now()
	g := newGuard(t, as, tokenguard.Config{
		Leeway: -1,
		ValidateClaims: func(_ context.Context, p *tokenguard.Principal) error {
			var c struct{ Tenant string }
			if err := p.Claims(&c); err != nil {
				return err
			}
			if c.Tenant != "acme" {
				return errors.New("wrong tenant")
			}
			return nil
		},
	})
	h := g.Handler(http.NotFoundHandler())
	if w := call(h, "Bearer "+as.Mint(oauthtest.Claims{"tenant": "acme", "exp": now.Add(-2 * time.Second).Unix()})); w.Code != 401 {
		t.Errorf("expired 2s ago with no leeway: %d", w.Code)
	}
	w := call(h, "Bearer "+as.Mint(oauthtest.Claims{"tenant": "evil"}))
	if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(g, "invalid_token", "token rejected by policy"); w.Code != 401 || got != want {
		t.Errorf("custom check: %d %s", w.Code, got)
	}
	if w := call(h, "Bearer "+as.Mint(oauthtest.Claims{"tenant": "acme"})); w.Code != 404 {
		t.Errorf("custom check passing: %d", w.Code)
	}
	// The default leeway (30s) forgives small skew.
	lenient := newGuard(t, as, tokenguard.Config{})
	if w := call(lenient.Handler(http.NotFoundHandler()), "Bearer "+as.Mint(oauthtest.Claims{"exp": now.Add(-10 * time.Second).Unix()})); w.Code != 404 {
		t.Errorf("expired 10s ago with default leeway: %d", w.Code)
	}
}
