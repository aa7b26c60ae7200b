package tokenguard_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// dpopKey is a client's DPoP key.
type dpopKey struct {
	key *ecdsa.PrivateKey
	jwk map[string]any
	jkt string
}

func newDPoPKey(t *testing.T) *dpopKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	x, y := make([]byte, 32), make([]byte, 32)
	k.PublicKey.X.FillBytes(x)
	k.PublicKey.Y.FillBytes(y)
	jwk := map[string]any{"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)}
	sum := sha256.Sum256([]byte(fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, b64(x), b64(y))))
	return &dpopKey{key: k, jwk: jwk, jkt: b64(sum[:])}
}

// proof signs a DPoP proof for method and url, bound to token.
func (k *dpopKey) proof(t *testing.T, method, url, token string, edit func(h, c map[string]any)) string {
	t.Helper()
	ath := sha256.Sum256([]byte(token))
	h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": k.jwk}
	c := map[string]any{"jti": fmt.Sprint(time.Now().UnixNano()), "htm": method, "htu": url, "iat": time.Now().Unix(), "ath": base64.RawURLEncoding.EncodeToString(ath[:])}
	if edit != nil {
		edit(h, c)
	}
	p, err := oauthtest.SignJWT(h, c, k.key, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// DPoP (RFC 9449) from the attacker's side: a bound token works only
// with a fresh proof of its key for this request, and never as Bearer.
func TestDPoP(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer, DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed}})
	alice, mallory := newDPoPKey(t), newDPoPKey(t)
	bound := as.Mint(oauthtest.Claims{"sub": "alice", "cnf": map[string]any{"jkt": alice.jkt}})
	unbound := as.Mint(oauthtest.Claims{"sub": "bob"})
	origin := strings.TrimSuffix(as.Resource(), "/api")
	url := origin + "/orders"
	var seen reached
	h := g.Handler(seen.handler())
	send := func(scheme, token string, proofs ...string) *httptest.ResponseRecorder {
		seen = reached{}
		r := httptest.NewRequest("GET", "/orders?x=1", nil)
		r.Header.Set("Authorization", scheme+" "+token)
		for _, p := range proofs {
			r.Header.Add("DPoP", p)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	algs := `algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"`
	dpopErr := func(code, desc string) []string {
		return []string{
			`DPoP realm="` + g.Resource() + `", algs` + algs[4:] + `, error="` + code + `", error_description="` + desc + `", resource_metadata="` + g.ResourceMetadataURL() + `"`,
			`Bearer realm="` + g.Resource() + `", resource_metadata="` + g.ResourceMetadataURL() + `"`,
		}
	}
	ok := alice.proof(t, "GET", url, bound, nil)
	if w := send("DPoP", bound, ok); w.Code != 200 || seen.principal == nil || seen.principal.Binding.JKT != alice.jkt {
		t.Fatalf("valid proof: %d %q", w.Code, w.Header().Values("WWW-Authenticate"))
	}
	cases := []struct {
		what   string
		scheme string
		token  string
		proofs []string
		want   []string
	}{
		{"replayed proof", "DPoP", bound, []string{ok}, dpopErr("invalid_dpop_proof", "DPoP proof replayed")},
		{"another key's proof", "DPoP", bound, []string{mallory.proof(t, "GET", url, bound, nil)}, dpopErr("invalid_token", "token not bound to the DPoP key")},
		{"no proof", "DPoP", bound, nil, dpopErr("invalid_dpop_proof", "exactly one DPoP proof required")},
		{"two proofs", "DPoP", bound, []string{alice.proof(t, "GET", url, bound, nil), alice.proof(t, "GET", url, bound, nil)}, dpopErr("invalid_dpop_proof", "exactly one DPoP proof required")},
		{"wrong method", "DPoP", bound, []string{alice.proof(t, "POST", url, bound, nil)}, dpopErr("invalid_dpop_proof", "invalid DPoP proof")},
		{"wrong URL", "DPoP", bound, []string{alice.proof(t, "GET", origin+"/admin", bound, nil)}, dpopErr("invalid_dpop_proof", "invalid DPoP proof")},
		{"proof for another token", "DPoP", bound, []string{alice.proof(t, "GET", url, unbound, nil)}, dpopErr("invalid_dpop_proof", "invalid DPoP proof")},
		{"old proof", "DPoP", bound, []string{alice.proof(t, "GET", url, bound, func(h, c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() })}, dpopErr("invalid_dpop_proof", "invalid DPoP proof")},
		{"private key in jwk", "DPoP", bound, []string{alice.proof(t, "GET", url, bound, func(h, c map[string]any) {
			j := map[string]any{}
			for k, v := range alice.jwk {
				j[k] = v
			}
			j["d"] = base64.RawURLEncoding.EncodeToString(alice.key.D.Bytes())
			h["jwk"] = j
		})}, dpopErr("invalid_dpop_proof", "invalid DPoP proof")},
		{"unbound token with DPoP", "DPoP", unbound, []string{alice.proof(t, "GET", url, unbound, nil)}, dpopErr("invalid_token", "token not bound to the DPoP key")},
		{"bound token as Bearer", "Bearer", bound, nil, []string{
			`Bearer realm="` + g.Resource() + `", error="invalid_token", error_description="token requires proof of possession", resource_metadata="` + g.ResourceMetadataURL() + `"`,
			`DPoP realm="` + g.Resource() + `", ` + algs + `, resource_metadata="` + g.ResourceMetadataURL() + `"`,
		}},
	}
	for _, c := range cases {
		w := send(c.scheme, c.token, c.proofs...)
		got := w.Header().Values("WWW-Authenticate")
		if w.Code != 401 || seen.called || strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s: %d reached=%v\n%q\nwant\n%q", c.what, w.Code, seen.called, got, c.want)
		}
	}
	// An unbound token as Bearer still works in DPoPAllowed mode.
	if w := send("Bearer", unbound); w.Code != 200 {
		t.Errorf("bearer token, allowed mode: %d", w.Code)
	}

	// DPoPRequired: Bearer is refused with the DPoP challenge only.
	req := newGuard(t, as, tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer, DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPRequired}})
	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+unbound)
	w := httptest.NewRecorder()
	req.Handler(okHandler).ServeHTTP(w, r)
	want := `DPoP realm="` + req.Resource() + `", ` + algs + `, error="invalid_token", error_description="DPoP proof required", resource_metadata="` + req.ResourceMetadataURL() + `"`
	if got := w.Header().Values("WWW-Authenticate"); w.Code != 401 || len(got) != 1 || got[0] != want {
		t.Errorf("required mode, Bearer: %d %q", w.Code, got)
	}
	// Optional does not pass a refused DPoP request as anonymous.
	var opt reached
	r = httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Authorization", "DPoP "+bound)
	w = httptest.NewRecorder()
	g.Optional(opt.handler()).ServeHTTP(w, r)
	if w.Code != 401 || opt.called {
		t.Errorf("Optional, DPoP without a proof: %d reached=%v", w.Code, opt.called)
	}
	// Disabled (the default): a DPoP-bound token is refused, and the DPoP
	// scheme is not a token.
	plain := newGuard(t, as, tokenguard.Config{})
	if w := call(plain.Handler(okHandler), "Bearer "+bound); w.Code != 401 {
		t.Errorf("disabled, bound token: %d", w.Code)
	}
	if w := call(plain.Handler(okHandler), "DPoP "+bound); w.Code != 401 || w.Header().Get("WWW-Authenticate") != wantChallenge(plain, "", "") {
		t.Errorf("disabled, DPoP scheme: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestDPoPConfigErrors(t *testing.T) {
	as := shared(t)
	for name, cfg := range map[string]tokenguard.Config{
		"no origin":   {Issuer: as.Issuer, Audience: "a", DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed}},
		"bad origin":  {Issuer: as.Issuer, Audience: "a", DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: "https://api.example.com/path"}},
		"bad mode":    {Issuer: as.Issuer, Audience: "a", DPoP: tokenguard.DPoPConfig{Mode: 7, Origin: "https://api.example.com"}},
		"HMAC in alg": {Issuer: as.Issuer, Audience: "a", DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: "https://api.example.com", Algorithms: []string{"HS256"}}},
	} {
		cfg.InsecureAllowHTTP = true
		if g, err := tokenguard.New(t.Context(), cfg); err == nil {
			g.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// A JWT the issuer introspects (IntrospectJWTAlways) is bound when its
// introspection answer says so, even if the JWT has no cnf: presented as
// Bearer it is refused; and two different bindings are refused too.
func TestBindingFromTheIntrospectionOfAJWT(t *testing.T) {
	alice, mallory := newDPoPKey(t), newDPoPKey(t)
	ts := newRecordingAS(t, false)
	g := newGuardAt(t, tokenguard.Config{Issuer: ts.issuer(""), Audience: "api://x",
		Introspection: tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s", JWTs: tokenguard.IntrospectJWTAlways}})
	plain := ts.mint("", oauthtest.Claims{"aud": "api://x"})
	if w := call(g.Handler(okHandler), "Bearer "+plain); w.Code != 200 {
		t.Fatalf("unbound JWT: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	boundByAnswer := ts.mint("", oauthtest.Claims{"aud": "api://x", "jti": "bound-by-answer"})
	differs := ts.mint("", oauthtest.Claims{"aud": "api://x", "jti": "differs", "cnf": map[string]any{"jkt": mallory.jkt}})
	ts.setAnswer(func(_, token string) map[string]any {
		if token == boundByAnswer || token == differs {
			return map[string]any{"active": true, "aud": "api://x", "cnf": map[string]any{"jkt": alice.jkt}}
		}
		return map[string]any{"active": true, "aud": "api://x"}
	})
	for name, tok := range map[string]string{"bound by the answer": boundByAnswer, "bindings differ": differs} {
		if w := call(g.Handler(okHandler), "Bearer "+tok); w.Code != 401 || w.Header().Get("WWW-Authenticate") != wantChallenge(g, "invalid_token", "token requires proof of possession") {
			t.Errorf("%s, as Bearer: %d %q", name, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}
