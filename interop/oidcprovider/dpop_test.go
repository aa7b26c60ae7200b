package oidcprovider_test

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// The DPoP client server.mjs configures (dpop_bound_access_tokens: every
// token it gets is bound to a key).
const dpopID, dpopSecret = "tokenguard-dpop", "dpop-secret"

// dpopAlgs is the algs= of the DPoP challenges of a Guard with the default
// proof algorithms (every asymmetric one it verifies).
const dpopAlgs = `algs="RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA Ed25519"`

// dpopChallenge is the exact DPoP challenge of this module's guards; code
// "" is the bare one offered beside a Bearer refusal.
func dpopChallenge(code, desc string) string {
	parts := []string{`realm="` + resource + `"`, dpopAlgs}
	if code != "" {
		parts = append(parts, `error="`+code+`"`, `error_description="`+desc+`"`)
	}
	parts = append(parts, `resource_metadata="`+resourceMetadata+`"`)
	return "DPoP " + strings.Join(parts, ", ")
}

// tokenAnswer is a token endpoint's answer: the status, the DPoP-Nonce
// header and the members of its JSON body.
type tokenAnswer struct {
	status int
	nonce  string
	body   []byte

	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"`
	Scope            string `json:"scope"`
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// postToken sends a client-credentials token request as id, with proof
// in the DPoP header ("" sends none).
func (p *provider) postToken(t *testing.T, id, secret, resource, scope, proof string) tokenAnswer {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if resource != "" {
		form.Set("resource", resource)
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, err := http.NewRequest("POST", p.issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /token: %v", err)
	}
	defer resp.Body.Close()
	a := tokenAnswer{status: resp.StatusCode, nonce: resp.Header.Get("DPoP-Nonce")}
	a.body, _ = io.ReadAll(resp.Body)
	if err := json.Unmarshal(a.body, &a); err != nil {
		t.Fatalf("POST /token: %d %s (%v)", a.status, a.body, err)
	}
	return a
}

// dpopToken gets an access token bound to key as a DPoP client does (RFC
// 9449 §5, §8): each try carries a fresh proof for POST <issuer>/token,
// with the DPoP-Nonce of the answer before; a 400 use_dpop_nonce is sent
// again with the nonce it brought, at most twice. It fails the test
// unless the token endpoint took the second proof (server.mjs requires
// nonces, so the first is always refused) and answered token_type DPoP.
// It returns the token and the nonce the proof that got it carried.
func (p *provider) dpopToken(t *testing.T, key *oauthtest.DPoPKey, resource, scope string) (token, nonce string) {
	t.Helper()
	var got []string
	for try := 0; try < 3; try++ {
		proof := key.ProofWith(oauthtest.ProofOptions{Method: "POST", URL: p.issuer + "/token", Nonce: nonce})
		a := p.postToken(t, dpopID, dpopSecret, resource, scope, proof)
		got = append(got, a.Error)
		if a.status == http.StatusBadRequest && a.Error == "use_dpop_nonce" && a.nonce != "" && a.nonce != nonce {
			nonce = a.nonce
			continue
		}
		if a.status != http.StatusOK || a.AccessToken == "" {
			t.Fatalf("POST /token with a DPoP proof (nonce %q): %d %s", nonce, a.status, a.body)
		}
		if a.TokenType != "DPoP" {
			t.Errorf("token_type %q, want DPoP", a.TokenType)
		}
		if len(got) != 2 || got[0] != "use_dpop_nonce" || nonce == "" {
			t.Errorf("token endpoint answers %q, want use_dpop_nonce, then the token", got)
		}
		return a.AccessToken, nonce
	}
	t.Fatalf("POST /token: still use_dpop_nonce after %d tries", len(got))
	return "", ""
}

// resourceServer is a Guard behind a real HTTP server of httptest, whose
// URL is the Guard's DPoP Origin: proofs name srv.URL + path, as a
// client reaching it does.
type resourceServer struct {
	g   *tokenguard.Guard
	srv *httptest.Server

	mu   sync.Mutex
	last *tokenguard.Principal
}

// newResourceServer serves GET /orders behind a Guard for p whose
// Config.DPoP is dc, with Origin the server's URL.
func newResourceServer(t *testing.T, p *provider, dc tokenguard.DPoPConfig) *resourceServer {
	t.Helper()
	rs := &resourceServer{}
	rs.srv = httptest.NewUnstartedServer(nil)
	rs.srv.Start()
	t.Cleanup(rs.srv.Close)
	dc.Origin = rs.srv.URL
	rs.g = newGuard(t, p, newCounter(), func(cfg *tokenguard.Config) { cfg.DPoP = dc })
	rs.srv.Config.Handler = rs.g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr, _ := tokenguard.PrincipalFrom(r.Context())
		rs.mu.Lock()
		rs.last = pr
		rs.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	return rs
}

// url is where proofs for GET /orders point.
func (rs *resourceServer) url() string { return rs.srv.URL + "/orders" }

// proof is a fresh proof of key for GET /orders with token.
func (rs *resourceServer) proof(key *oauthtest.DPoPKey, token string) string {
	return key.Proof("GET", rs.url(), token)
}

// send sends GET /orders with "Authorization: scheme token" (none when
// scheme is "") and proof in the DPoP header ("" none).
func (rs *resourceServer) send(t *testing.T, scheme, token, proof string) *http.Response {
	t.Helper()
	rs.mu.Lock()
	rs.last = nil
	rs.mu.Unlock()
	req, err := http.NewRequest("GET", rs.url(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if scheme != "" {
		req.Header.Set("Authorization", scheme+" "+token)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := rs.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET /orders: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// call is send that checks the status and every WWW-Authenticate value,
// in order (none for no challenges); it returns the Principal on 200.
func (rs *resourceServer) call(t *testing.T, scheme, token, proof string, status int, challenges ...string) *tokenguard.Principal {
	t.Helper()
	resp := rs.send(t, scheme, token, proof)
	got := resp.Header.Values("WWW-Authenticate")
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d (WWW-Authenticate %q)", resp.StatusCode, status, got)
	}
	if strings.Join(got, "\n") != strings.Join(challenges, "\n") {
		t.Errorf("WWW-Authenticate\n got %q\nwant %q", got, challenges)
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if status == http.StatusOK && rs.last == nil {
		t.Error("handler not reached or no Principal")
	}
	return rs.last
}

// TestDPoP gets DPoP-bound tokens (RFC 9449) from oidc-provider, a JWT and
// an opaque one, checks what they carry, and presents them to tokenguard
// Guards with DPoP disabled, allowed, required and with the Guard's own
// nonces. What oidc-provider 9.13.3 does, as this test records it:
//   - features.dPoP is on by default; a client-credentials request with a
//     DPoP proof gets a token bound to the proof's key, token_type DPoP;
//     a client with dpop_bound_access_tokens gets none without a proof
//     (400 invalid_grant, "grant request is invalid": the detail is only
//     in its debug output), nor with a proof it saw before;
//   - nonces need features.dPoP.nonceSecret (32 bytes) and requireNonce:
//     a proof without one is refused with 400 use_dpop_nonce and a
//     DPoP-Nonce header, as RFC 9449 §8 says;
//   - the binding is cnf {jkt} in the JWT and in the introspection answer
//     of an opaque token (with token_type DPoP there too), and its
//     thumbprint is oauthtest's (RFC 7638) for the same key.
func TestDPoP(t *testing.T) {
	t.Parallel()
	node := needNode(t)
	p := startProvider(t, node, "0", newKey(t, "k1"))
	key, other := oauthtest.NewDPoPKey("ES256"), oauthtest.NewDPoPKey("ES256")

	t.Run("token endpoint", func(t *testing.T) {
		// The DPoP client gets nothing without a proof.
		a := p.postToken(t, dpopID, dpopSecret, resource, "orders:read", "")
		t.Logf("no proof: %d %s", a.status, a.body)
		if a.status != http.StatusBadRequest || a.Error != "invalid_grant" || a.AccessToken != "" {
			t.Errorf("no proof: %d %s, want 400 invalid_grant", a.status, a.body)
		}
		// A proof without the server's nonce: 400 use_dpop_nonce, and the nonce.
		first := key.ProofWith(oauthtest.ProofOptions{Method: "POST", URL: p.issuer + "/token"})
		a = p.postToken(t, dpopID, dpopSecret, resource, "orders:read", first)
		t.Logf("no nonce: %d %s, DPoP-Nonce %q", a.status, a.body, a.nonce)
		if a.status != http.StatusBadRequest || a.Error != "use_dpop_nonce" || a.nonce == "" {
			t.Fatalf("no nonce: %d %s, DPoP-Nonce %q; want 400 use_dpop_nonce with a nonce", a.status, a.body, a.nonce)
		}
		// With it: the token. The same proof again is a replay.
		withNonce := key.ProofWith(oauthtest.ProofOptions{Method: "POST", URL: p.issuer + "/token", Nonce: a.nonce})
		a = p.postToken(t, dpopID, dpopSecret, resource, "orders:read", withNonce)
		if a.status != http.StatusOK || a.TokenType != "DPoP" || a.AccessToken == "" {
			t.Fatalf("with the nonce: %d %s, want 200 token_type DPoP", a.status, a.body)
		}
		a = p.postToken(t, dpopID, dpopSecret, resource, "orders:read", withNonce)
		t.Logf("the proof again: %d %s", a.status, a.body)
		if a.status != http.StatusBadRequest || a.Error != "invalid_grant" || a.AccessToken != "" {
			t.Errorf("the proof again: %d %s, want 400 invalid_grant", a.status, a.body)
		}
	})

	jwt, jwtNonce := p.dpopToken(t, key, resource, "orders:read")
	h, cl := shape(t, jwt)
	logJSON(t, "DPoP-bound JWT header", h)
	logJSON(t, "DPoP-bound JWT claims", cl)
	if cnf, _ := cl["cnf"].(map[string]any); h["typ"] != "at+jwt" || cnf["jkt"] != key.Thumbprint() || len(cnf) != 1 {
		t.Errorf("JWT header %v claims %v: want typ at+jwt, cnf {jkt: %s}", h, cl, key.Thumbprint())
	}
	opaque, _ := p.dpopToken(t, key, "", "orders:read orders:write")
	if strings.Count(opaque, ".") != 0 || !isBase64URL(opaque) {
		t.Errorf("opaque token %d characters, not plain base64url", len(opaque))
	}
	status, body := p.introspect(t, opaque)
	t.Logf("introspection answer, DPoP-bound opaque token (direct): %d %s", status, body)
	var ans struct {
		Active    bool              `json:"active"`
		TokenType string            `json:"token_type"`
		Cnf       map[string]string `json:"cnf"`
	}
	if err := json.Unmarshal(body, &ans); err != nil || status != http.StatusOK || !ans.Active ||
		ans.TokenType != "DPoP" || ans.Cnf["jkt"] != key.Thumbprint() || len(ans.Cnf) != 1 {
		t.Errorf("introspection answer %d %s (%v): want active, token_type DPoP, cnf {jkt: %s}", status, body, err, key.Thumbprint())
	}

	formats := []struct {
		name  string
		token string
		kind  tokenguard.TokenKind
	}{{"JWT", jwt, tokenguard.KindJWT}, {"opaque", opaque, tokenguard.KindOpaque}}

	t.Run("DPoP allowed", func(t *testing.T) {
		rs := newResourceServer(t, p, tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed})
		for _, f := range formats {
			t.Run(f.name, func(t *testing.T) {
				proof := rs.proof(key, f.token)
				pr := rs.call(t, "DPoP", f.token, proof, http.StatusOK)
				if pr != nil {
					logJSON(t, "Principal", pr)
					if pr.Kind != f.kind || pr.Binding.JKT != key.Thumbprint() || pr.Binding.X5TS256 != "" ||
						pr.ClientID != dpopID || pr.Issuer != p.issuer {
						t.Errorf("Principal %+v: want %v, client %s, Binding.JKT %s", pr, f.kind, dpopID, key.Thumbprint())
					}
				}
				rs.call(t, "Bearer", f.token, "", http.StatusUnauthorized,
					wantChallenge("invalid_token", "token requires proof of possession"), dpopChallenge("", ""))
				rs.call(t, "DPoP", f.token, rs.proof(other, f.token), http.StatusUnauthorized,
					dpopChallenge("invalid_token", "token not bound to the DPoP key"), wantChallenge("", ""))
				rs.call(t, "DPoP", f.token, proof, http.StatusUnauthorized,
					dpopChallenge("invalid_dpop_proof", "DPoP proof replayed"), wantChallenge("", ""))
				// A proof made for the token endpoint (POST <issuer>/token,
				// no ath) does not open the resource.
				tokenProof := key.ProofWith(oauthtest.ProofOptions{Method: "POST", URL: p.issuer + "/token", Nonce: jwtNonce})
				rs.call(t, "DPoP", f.token, tokenProof, http.StatusUnauthorized,
					dpopChallenge("invalid_dpop_proof", "invalid DPoP proof"), wantChallenge("", ""))
				rs.call(t, "DPoP", f.token, "", http.StatusUnauthorized,
					dpopChallenge("invalid_dpop_proof", "exactly one DPoP proof required"), wantChallenge("", ""))
				rs.call(t, "DPoP", f.token, rs.proof(key, f.token), http.StatusOK)
			})
		}
		// Plain bearer tokens of the other client still pass.
		rs.call(t, "Bearer", p.token(t, appID, appSecret, resource, "orders:read"), "", http.StatusOK)
		rs.call(t, "Bearer", p.token(t, appID, appSecret, "", "orders:read"), "", http.StatusOK)
	})

	t.Run("DPoP disabled", func(t *testing.T) {
		// A Guard that knows nothing of DPoP takes no bound token as Bearer.
		g := newGuard(t, p, newCounter(), nil)
		for _, f := range formats {
			call(t, g, f.token, http.StatusUnauthorized, wantChallenge("invalid_token", "token requires proof of possession"))
		}
	})

	t.Run("DPoP required", func(t *testing.T) {
		rs := newResourceServer(t, p, tokenguard.DPoPConfig{Mode: tokenguard.DPoPRequired})
		rs.call(t, "", "", "", http.StatusUnauthorized, dpopChallenge("", ""))
		for _, tok := range []string{p.token(t, appID, appSecret, resource, "orders:read"), p.token(t, appID, appSecret, "", "orders:read")} {
			rs.call(t, "Bearer", tok, "", http.StatusUnauthorized, dpopChallenge("invalid_token", "DPoP proof required"))
		}
		for _, f := range formats {
			pr := rs.call(t, "DPoP", f.token, rs.proof(key, f.token), http.StatusOK)
			if pr != nil && pr.Binding.JKT != key.Thumbprint() {
				t.Errorf("%s: Binding.JKT %q, want %q", f.name, pr.Binding.JKT, key.Thumbprint())
			}
			rs.call(t, "Bearer", f.token, "", http.StatusUnauthorized, dpopChallenge("invalid_token", "token requires proof of possession"))
		}
	})

	t.Run("Guard nonces", func(t *testing.T) {
		nonceKey := make([]byte, 32)
		rand.Read(nonceKey)
		rs := newResourceServer(t, p, tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, NonceKey: nonceKey})
		for _, f := range formats {
			t.Run(f.name, func(t *testing.T) {
				// As a client does: a proof without a nonce, then one with
				// the nonce the refusal brought.
				nonce := ""
				var answers []int
				for try := 0; try < 3; try++ {
					resp := rs.send(t, "DPoP", f.token, key.ProofWith(oauthtest.ProofOptions{URL: rs.url(), Token: f.token, Nonce: nonce}))
					answers = append(answers, resp.StatusCode)
					got := resp.Header.Values("WWW-Authenticate")
					if resp.StatusCode == http.StatusUnauthorized && nonce == "" {
						want := []string{dpopChallenge("use_dpop_nonce", "DPoP nonce required"), wantChallenge("", "")}
						if strings.Join(got, "\n") != strings.Join(want, "\n") {
							t.Errorf("no nonce: WWW-Authenticate\n got %q\nwant %q", got, want)
						}
						if nonce = resp.Header.Get("DPoP-Nonce"); nonce == "" {
							t.Fatal("no nonce: no DPoP-Nonce")
						}
						continue
					}
					if resp.StatusCode != http.StatusOK || len(got) != 0 {
						t.Fatalf("with the nonce: %d %q, want 200", resp.StatusCode, got)
					}
					if n := resp.Header.Get("DPoP-Nonce"); n != nonce {
						t.Errorf("DPoP-Nonce %q with the answer, want the nonce %q", n, nonce)
					}
					break
				}
				if len(answers) != 2 || answers[0] != http.StatusUnauthorized || answers[1] != http.StatusOK {
					t.Errorf("answers %v, want [401 200]", answers)
				}
				rs.mu.Lock()
				pr := rs.last
				rs.mu.Unlock()
				if pr == nil || pr.Binding.JKT != key.Thumbprint() || pr.Kind != f.kind {
					t.Errorf("Principal %+v, want %v bound to %s", pr, f.kind, key.Thumbprint())
				}
				// oidc-provider's nonce is not this Guard's.
				rs.call(t, "DPoP", f.token, key.ProofWith(oauthtest.ProofOptions{URL: rs.url(), Token: f.token, Nonce: jwtNonce}),
					http.StatusUnauthorized, dpopChallenge("use_dpop_nonce", "DPoP nonce required"), wantChallenge("", ""))
			})
		}
	})
}
