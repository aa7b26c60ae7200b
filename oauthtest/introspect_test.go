package oauthtest_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/oauthtest"
)

// fakeClock is a clock for Options.Now that tests move by hand; it is safe
// for concurrent use, as the server reads it from its handlers.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: fixedNow} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// The resource server's credentials at the introspection endpoint.
const rsID, rsSecret = "rs", "rs-secret"

// introspectRequest builds a form POST to the introspection endpoint; basic,
// when not nil, holds the raw user and password (not encoded here).
func introspectRequest(t *testing.T, srv *oauthtest.Server, form url.Values, basic []string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.IntrospectionURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(basic[0], basic[1])
	}
	return req
}

// introspect asks about token as the client rs with client_secret_basic.
func introspect(t *testing.T, srv *oauthtest.Server, token string) tokenResponse {
	t.Helper()
	r := do(t, srv, introspectRequest(t, srv, url.Values{"token": {token}}, []string{rsID, rsSecret}))
	if r.status != http.StatusOK {
		t.Fatalf("introspection: status %d: %v", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	return r
}

// active introspects token and checks the answer has the shape RFC 7662
// §2.2 requires: a boolean active, and nothing else when it is false.
func active(t *testing.T, srv *oauthtest.Server, token string) bool {
	t.Helper()
	body := introspect(t, srv, token).body
	a, ok := body["active"].(bool)
	if !ok {
		t.Fatalf("active = %#v, want a boolean: %v", body["active"], body)
	}
	if !a && len(body) != 1 {
		t.Errorf("inactive answer has more than active: %v", body)
	}
	return a
}

func lastCall(t *testing.T, srv *oauthtest.Server) oauthtest.IntrospectionCall {
	t.Helper()
	calls := srv.IntrospectionCalls()
	if len(calls) == 0 {
		t.Fatal("no introspection call recorded")
	}
	return calls[len(calls)-1]
}

func TestMintOpaqueIntrospection(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}, Now: clock.Now, TokenLifetime: 10 * time.Minute})
	srv.RegisterClient(rsID, rsSecret)

	tok := srv.MintOpaque(oauthtest.Claims{"sub": "alice", "scope": "orders:read orders:write", "tenant": "t1"})
	if strings.Contains(tok, ".") || len(tok) != 43 {
		t.Errorf("opaque token %q: want 43 characters without dots", tok)
	}
	if raw, err := b64.DecodeString(tok); err != nil || len(raw) != 32 {
		t.Errorf("opaque token is not 32 bytes of unpadded base64url: %v", err)
	}
	if srv.MintOpaque(nil) == tok {
		t.Error("two opaque tokens are equal")
	}

	r := introspect(t, srv, tok)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	b := r.body
	if got := memberNames(b); got != "active,aud,client_id,exp,iat,iss,jti,scope,sub,tenant,token_type" {
		t.Errorf("members %s", got)
	}
	want := map[string]any{
		"active": true, "scope": "orders:read orders:write", "client_id": "client-1", "sub": "alice",
		"iss": srv.Issuer, "aud": srv.Resource(), "token_type": "Bearer", "tenant": "t1",
		"iat": float64(fixedNow.Unix()), "exp": float64(fixedNow.Add(10 * time.Minute).Unix()),
	}
	for name, v := range want {
		if b[name] != v {
			t.Errorf("%s = %#v, want %#v", name, b[name], v)
		}
	}
	if jti, _ := b["jti"].(string); jti == "" {
		t.Errorf("jti = %#v", b["jti"])
	}

	if active(t, srv, "not-a-token") {
		t.Error("unknown token is active")
	}
	if active(t, srv, tok+"x") {
		t.Error("extended token is active")
	}

	// Expiry with the fake clock: active until the second before exp.
	clock.Advance(10*time.Minute - time.Second)
	if !active(t, srv, tok) {
		t.Error("inactive a second before exp")
	}
	clock.Advance(time.Second)
	if active(t, srv, tok) {
		t.Error("active at exp")
	}

	// Revocation affects only the revoked token.
	a, c := srv.MintOpaque(nil), srv.MintOpaque(nil)
	if !active(t, srv, a) || !active(t, srv, c) {
		t.Fatal("fresh tokens inactive")
	}
	srv.Revoke(a)
	srv.Revoke(a) // twice is harmless
	srv.Revoke("never-issued")
	if active(t, srv, a) {
		t.Error("revoked token active")
	}
	if !active(t, srv, c) {
		t.Error("another token was revoked too")
	}
}

func TestMintOpaqueClaims(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}, Now: clock.Now})
	srv.RegisterClient(rsID, rsSecret)

	// nil removes a default: without exp the token never expires.
	forever := srv.MintOpaque(oauthtest.Claims{"exp": nil, "jti": nil})
	clock.Advance(1000 * time.Hour)
	b := introspect(t, srv, forever).body
	if b["active"] != true || memberNames(b) != "active,aud,client_id,iat,iss,sub,token_type" {
		t.Errorf("token without exp: %v", b)
	}

	// Claims are kept as given: a time.Time is a NumericDate, arrays and a
	// token_type of the test's own pass through, active cannot be forged.
	nbf := clock.Now().Add(time.Minute)
	claims := oauthtest.Claims{
		"nbf": nbf, "aud": []string{"a", "b"}, "iss": "https://other.example",
		"token_type": "refresh_token", "active": "yes", "n": 1.5,
	}
	tok := srv.MintOpaque(claims)
	claims["iss"] = "changed after minting"
	if active(t, srv, tok) {
		t.Error("active before nbf")
	}
	clock.Advance(time.Minute)
	b = introspect(t, srv, tok).body
	if b["active"] != true || b["nbf"] != float64(nbf.Unix()) || b["iss"] != "https://other.example" ||
		b["token_type"] != "refresh_token" || b["n"] != 1.5 {
		t.Errorf("body %v", b)
	}
	if aud, _ := json.Marshal(b["aud"]); string(aud) != `["a","b"]` {
		t.Errorf("aud %s", aud)
	}

	// An exp that is not a number makes the token unusable.
	if active(t, srv, srv.MintOpaque(oauthtest.Claims{"exp": "tomorrow"})) {
		t.Error("token with a string exp is active")
	}

	mustPanic(t, "MintOpaque", func() { srv.MintOpaque(oauthtest.Claims{"bad": make(chan int)}) })
	unstarted := oauthtest.NewUnstartedServer(oauthtest.Options{Algorithms: []string{"EdDSA"}})
	defer unstarted.Close()
	mustPanic(t, "before the server started", func() { unstarted.MintOpaque(nil) })
}

func TestIntrospectJWT(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, oauthtest.Options{Algorithms: allAlgs, Now: clock.Now})
	srv.RegisterClient(rsID, rsSecret)
	kids := srv.KeyIDs()
	keys := testKeys()
	forgeKey := map[string]string{"RS": "RSA", "PS": "RSA", "ES256": "P-256", "ES384": "P-384", "ES512": "P-521", "EdDSA": "Ed25519"}

	for i, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			tok := srv.MintWith(oauthtest.MintOptions{Alg: alg, Claims: oauthtest.Claims{"scope": "read", "tenant": "t1"}})
			_, claims, parts := splitJWS(t, tok)
			b := introspect(t, srv, tok).body
			if b["active"] != true || b["token_type"] != "Bearer" || b["scope"] != "read" || b["tenant"] != "t1" ||
				b["jti"] != claims["jti"] || b["iss"] != srv.Issuer || b["aud"] != srv.Resource() {
				t.Fatalf("body %v", b)
			}

			// Forged: the same header and claims, signed with a key of the
			// same type that the server never had.
			name := forgeKey[alg]
			if name == "" {
				name = forgeKey[alg[:2]]
			}
			header := map[string]any{"alg": alg, "kid": kids[i], "typ": "at+jwt"}
			forged, err := oauthtest.SignJWT(header, map[string]any{"sub": "user-1", "exp": fixedNow.Add(time.Hour).Unix()}, keys[name], alg)
			if err != nil {
				t.Fatal(err)
			}
			if active(t, srv, forged) {
				t.Error("token signed with a foreign key is active")
			}
			// Tampered: another payload under the genuine signature.
			other := b64.EncodeToString([]byte(`{"sub":"admin","exp":9999999999}`))
			if active(t, srv, parts[0]+"."+other+"."+parts[2]) {
				t.Error("tampered token is active")
			}
		})
	}

	tok := srv.Mint(nil)
	if !active(t, srv, tok) {
		t.Fatal("minted token inactive")
	}
	// Without a kid, the keys of the header's algorithm are tried.
	if !active(t, srv, srv.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": nil}})) {
		t.Error("token without kid inactive")
	}
	// A header that misstates the algorithm does not verify.
	if active(t, srv, srv.MintWith(oauthtest.MintOptions{Alg: "ES256", Header: map[string]any{"alg": "ES384"}})) {
		t.Error("token with a misstated alg is active")
	}
	if active(t, srv, srv.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": 7}})) {
		t.Error("token with a numeric kid is active")
	}
	unsecured, _ := oauthtest.SignJWT(map[string]any{"alg": "none"}, map[string]any{"sub": "user-1"}, nil, "none")
	if active(t, srv, unsecured) {
		t.Error("alg none token is active")
	}
	// A retired key still vouches for what it signed.
	retired := srv.Mint(nil)
	srv.RetireKey(kids[0])
	if !active(t, srv, retired) {
		t.Error("token of a retired key inactive")
	}
	// Keys published with PublishExtraKey are not the server's.
	srv.PublishExtraKey(map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "extra", "x": b64.EncodeToString(keys["Ed25519"].Public().(ed25519.PublicKey))})
	extra, _ := oauthtest.SignJWT(map[string]any{"alg": "EdDSA", "kid": "extra"}, map[string]any{"sub": "user-1"}, keys["Ed25519"], "EdDSA")
	if active(t, srv, extra) {
		t.Error("token of an extra published key is active")
	}

	// Revocation.
	srv.Revoke(tok)
	if active(t, srv, tok) {
		t.Error("revoked JWT active")
	}
	// Expiry: exp is now + one hour.
	fresh := srv.Mint(nil)
	clock.Advance(time.Hour)
	if active(t, srv, fresh) {
		t.Error("JWT active at exp")
	}
	if active(t, srv, srv.Mint(oauthtest.Claims{"exp": clock.Now().Add(-time.Second)})) {
		t.Error("expired JWT active")
	}
}

func TestIntrospectionAuthMethods(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	srv.RegisterClient("a:b", "p@ss w%rd+:x") // needs form-url-encoding in Basic
	srv.RegisterClient("svc", "s3cret", "read")
	srv.RegisterClient("public", "")
	esc := url.QueryEscape
	tok := srv.Mint(nil)

	cc := postToken(t, srv, url.Values{"grant_type": {"client_credentials"}}, []string{"svc", "s3cret"})
	svcToken, _ := cc.body["access_token"].(string)
	revoked := srv.Mint(oauthtest.Claims{"client_id": "svc"})
	srv.Revoke(revoked)

	type request struct {
		name        string
		form        url.Values
		basic       []string
		auth        string // raw Authorization header
		json        string // a JSON body instead of form
		status      int
		err         string
		challenge   string // prefix of WWW-Authenticate
		method, cid string // recorded
	}
	form := func(kv ...string) url.Values {
		v := url.Values{"token": {tok}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	tests := []request{
		{name: "basic, encoded", form: form(), basic: []string{esc("a:b"), esc("p@ss w%rd+:x")}, status: 200, method: "client_secret_basic", cid: "a:b"},
		{name: "basic, not encoded", form: form(), basic: []string{"a:b", "p@ss w%rd+:x"}, status: 401, err: "invalid_client", challenge: "Basic", method: "client_secret_basic"},
		{name: "basic, wrong secret", form: form(), basic: []string{"svc", "nope"}, status: 401, err: "invalid_client", challenge: "Basic", method: "client_secret_basic"},
		{name: "basic, unknown client", form: form(), basic: []string{"who", "s3cret"}, status: 401, err: "invalid_client", challenge: "Basic", method: "client_secret_basic"},
		{name: "post", form: form("client_id", "a:b", "client_secret", "p@ss w%rd+:x"), status: 200, method: "client_secret_post", cid: "a:b"},
		{name: "post, wrong secret", form: form("client_id", "svc", "client_secret", "s3cret "), status: 401, err: "invalid_client", challenge: "Basic", method: "client_secret_post"},
		{name: "post in JSON", json: `{"token":"` + tok + `","client_id":"svc","client_secret":"s3cret"}`, status: 200, method: "client_secret_post", cid: "svc"},
		{name: "basic with JSON", json: `{"token":"` + tok + `"}`, basic: []string{"svc", "s3cret"}, status: 200, method: "client_secret_basic", cid: "svc"},
		{name: "bearer from client credentials", form: form(), auth: "Bearer " + svcToken, status: 200, method: "bearer", cid: "svc"},
		{name: "bearer, scheme in lower case", form: form(), auth: "bearer " + svcToken, status: 200, method: "bearer", cid: "svc"},
		{name: "bearer, revoked", form: form(), auth: "Bearer " + revoked, status: 401, err: "invalid_client", challenge: "Bearer", method: "bearer"},
		{name: "bearer, not a token", form: form(), auth: "Bearer abc", status: 401, err: "invalid_client", challenge: "Bearer", method: "bearer"},
		{name: "bearer, empty", form: form(), auth: "Bearer ", status: 401, err: "invalid_client", challenge: "Bearer", method: "bearer"},
		{name: "bearer of an unregistered client", form: form(), auth: "Bearer " + tok, status: 401, err: "invalid_client", challenge: "Bearer", method: "bearer"},
		{name: "bearer and client_secret", form: form("client_secret", "s3cret"), auth: "Bearer " + svcToken, status: 400, err: "invalid_request", method: "bearer"},
		{name: "bearer, client_id differs", form: form("client_id", "a:b"), auth: "Bearer " + svcToken, status: 400, err: "invalid_request", method: "bearer"},
		{name: "no credentials", form: form(), status: 401, err: "invalid_client", challenge: "Basic"},
		{name: "other scheme", form: form(), auth: "Digest username=svc", status: 401, err: "invalid_client", challenge: "Basic"},
		{name: "public client", form: form("client_id", "public"), status: 401, err: "invalid_client", challenge: "Basic", method: "none"},
		{name: "confidential client without secret", form: form("client_id", "svc"), status: 401, err: "invalid_client", challenge: "Basic", method: "none"},
		{name: "two methods", form: form("client_secret", "s3cret"), basic: []string{"svc", "s3cret"}, status: 400, err: "invalid_request", method: "client_secret_basic"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req *http.Request
			if tc.json != "" {
				req, _ = http.NewRequest(http.MethodPost, srv.IntrospectionURL(), strings.NewReader(tc.json))
				req.Header.Set("Content-Type", "application/json; charset=utf-8")
				if tc.basic != nil {
					req.SetBasicAuth(tc.basic[0], tc.basic[1])
				}
			} else {
				req = introspectRequest(t, srv, tc.form, tc.basic)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			r := do(t, srv, req)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %v", r.status, tc.status, r.body)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.challenge) || (tc.challenge == "") != (got == "") {
				t.Errorf("WWW-Authenticate %q, want %s", got, tc.challenge)
			}
			if tc.err != "" {
				if r.body["error"] != tc.err {
					t.Errorf("body %v, want error %s", r.body, tc.err)
				}
			} else if r.body["active"] != true || r.body["sub"] != "user-1" {
				t.Errorf("body %v", r.body)
			}
			want := oauthtest.IntrospectionCall{ClientID: tc.cid, AuthMethod: tc.method, Status: tc.status, Active: tc.status == 200}
			if got := lastCall(t, srv); got != want {
				t.Errorf("call %+v, want %+v", got, want)
			}
		})
	}
	if n, calls := srv.Requests(oauthtest.EndpointIntrospect), len(srv.IntrospectionCalls()); n != len(tests) || calls != len(tests) {
		t.Errorf("Requests %d, IntrospectionCalls %d, want %d", n, calls, len(tests))
	}
	srv.ResetCounts()
	if calls := srv.IntrospectionCalls(); len(calls) != 0 {
		t.Errorf("after ResetCounts: %v", calls)
	}
}

func TestIntrospectionAuthOption(t *testing.T) {
	tests := []struct {
		mode      string
		advertise string
		accepted  []string // of basic, post, bearer, nothing
	}{
		{"", `["client_secret_basic","client_secret_post"]`, []string{"basic", "post", "bearer"}},
		{"none", `["client_secret_basic","client_secret_post","none"]`, []string{"basic", "post", "bearer", "nothing", "wrong"}},
		{"client_secret_basic", `["client_secret_basic"]`, []string{"basic"}},
		{"client_secret_post", `["client_secret_post"]`, []string{"post"}},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}, IntrospectionAuth: tc.mode})
			srv.RegisterClient("svc", "s3cret")
			doc := getDoc(t, srv, srv.ServerMetadataURL())
			if got, _ := json.Marshal(doc["introspection_endpoint_auth_methods_supported"]); string(got) != tc.advertise {
				t.Errorf("introspection_endpoint_auth_methods_supported %s, want %s", got, tc.advertise)
			}
			tok := srv.Mint(oauthtest.Claims{"client_id": "svc"})
			for _, how := range []string{"basic", "post", "bearer", "nothing", "wrong"} {
				form := url.Values{"token": {tok}}
				var basic []string
				switch how {
				case "basic":
					basic = []string{"svc", "s3cret"}
				case "post":
					form.Set("client_id", "svc")
					form.Set("client_secret", "s3cret")
				case "wrong":
					basic = []string{"svc", "wrong"}
				}
				req := introspectRequest(t, srv, form, basic)
				if how == "bearer" {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				r := do(t, srv, req)
				want := http.StatusUnauthorized
				if slices.Contains(tc.accepted, how) {
					want = http.StatusOK
				}
				if r.status != want || (want == 200 && r.body["active"] != true) {
					t.Errorf("%s: status %d, want %d: %v", how, r.status, want, r.body)
				}
				if c := lastCall(t, srv); tc.mode == "none" && (c.AuthMethod != "none" || c.ClientID != "") {
					t.Errorf("%s: call %+v, want method none and no client", how, c)
				}
			}
		})
	}
	mustPanic(t, "IntrospectionAuth", func() {
		oauthtest.NewUnstartedServer(oauthtest.Options{IntrospectionAuth: "bearer"}).Close()
	})
}

func TestIntrospectionRequestShape(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprint("strict=", strict), func(t *testing.T) {
			srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}, RejectTokenTypeHint: strict})
			srv.RegisterClient(rsID, rsSecret)
			tok := srv.MintOpaque(nil)
			basic := []string{rsID, rsSecret}
			hintStatus := map[bool]int{false: 200, true: 400}[strict]
			tests := []struct {
				name        string
				contentType string
				body        string
				status      int
				hint        string
			}{
				{"form", "application/x-www-form-urlencoded", "token=" + tok, 200, ""},
				{"JSON", "application/json", `{"token":"` + tok + `"}`, 200, ""},
				{"hint", "application/x-www-form-urlencoded", "token=" + tok + "&token_type_hint=access_token", hintStatus, "access_token"},
				{"hint in JSON", "application/json", `{"token":"` + tok + `","token_type_hint":"refresh_token"}`, hintStatus, "refresh_token"},
				{"unknown parameter", "application/x-www-form-urlencoded", "token=" + tok + "&foo=bar", hintStatus, ""},
				{"missing token", "application/x-www-form-urlencoded", "token_type_hint=access_token", 400, "access_token"},
				{"empty token", "application/json", `{"token":""}`, 400, ""},
				{"token in the query only", "application/x-www-form-urlencoded", "", 400, ""},
				{"repeated token", "application/x-www-form-urlencoded", "token=" + tok + "&token=" + tok, 400, ""},
				{"JSON number", "application/json", `{"token":1}`, 400, ""},
				{"JSON array", "application/json", `["` + tok + `"]`, 400, ""},
				{"two JSON objects", "application/json", `{"token":"` + tok + `"}{}`, 400, ""},
				{"malformed JSON", "application/json", `{"token":`, 400, ""},
				{"no Content-Type", "", "token=" + tok, 400, ""},
				{"text", "text/plain", "token=" + tok, 400, ""},
			}
			for _, tc := range tests {
				u := srv.IntrospectionURL()
				if tc.name == "token in the query only" {
					u += "?token=" + tok
				}
				req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(tc.body))
				if tc.contentType != "" {
					req.Header.Set("Content-Type", tc.contentType)
				}
				req.SetBasicAuth(basic[0], basic[1])
				r := do(t, srv, req)
				if r.status != tc.status {
					t.Errorf("%s: status %d, want %d: %v", tc.name, r.status, tc.status, r.body)
					continue
				}
				if tc.status == 200 && r.body["active"] != true {
					t.Errorf("%s: %v", tc.name, r.body)
				}
				if tc.status == 400 && (r.body["error"] != "invalid_request" || r.body["error_description"] == nil) {
					t.Errorf("%s: %v", tc.name, r.body)
				}
				if c := lastCall(t, srv); c.TokenTypeHint != tc.hint || c.Status != tc.status {
					t.Errorf("%s: call %+v", tc.name, c)
				}
			}
			// Methods other than POST are refused and not listed as calls.
			before := len(srv.IntrospectionCalls())
			if status, _, _ := get(t, srv, srv.IntrospectionURL()); status != http.StatusMethodNotAllowed {
				t.Errorf("GET: status %d", status)
			}
			if len(srv.IntrospectionCalls()) != before {
				t.Error("GET was listed")
			}
		})
	}
}

func TestIntrospectionRateLimit(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}, Now: clock.Now, IntrospectionRateLimit: 5})
	srv.RegisterClient("a", "pa")
	srv.RegisterClient("b", "pb")
	tok := srv.MintOpaque(oauthtest.Claims{"exp": nil})
	call := func(id, secret string) tokenResponse {
		t.Helper()
		return do(t, srv, introspectRequest(t, srv, url.Values{"token": {tok}}, []string{id, secret}))
	}
	ok := func(id, secret string) {
		t.Helper()
		if r := call(id, secret); r.status != 200 || r.body["active"] != true {
			t.Fatalf("%s: status %d: %v", id, r.status, r.body)
		}
	}
	limited := func(id, secret, retryAfter string) {
		t.Helper()
		r := call(id, secret)
		if r.status != http.StatusTooManyRequests || r.body["error"] != "rate_limited" {
			t.Fatalf("%s: status %d: %v, want 429 rate_limited", id, r.status, r.body)
		}
		if got := r.header.Get("Retry-After"); got != retryAfter {
			t.Errorf("%s: Retry-After %q, want %q", id, got, retryAfter)
		}
	}

	// Failed authentication does not use up the client's calls.
	for range 3 {
		if r := call("a", "wrong"); r.status != 401 {
			t.Fatalf("wrong secret: %d", r.status)
		}
	}
	for range 5 {
		ok("a", "pa")
		clock.Advance(time.Second) // the window opened at the first call
	}
	clock.Advance(5*time.Second + 500*time.Millisecond) // 10.5 s into the window
	limited("a", "pa", "50")                            // 49.5 s left, rounded up
	limited("a", "pa", "50")
	ok("b", "pb") // b has a bucket of its own
	clock.Advance(49 * time.Second)
	limited("a", "pa", "1") // half a second left
	clock.Advance(500 * time.Millisecond)
	for range 5 {
		ok("a", "pa") // a new window, the 429s did not count
	}
	limited("a", "pa", "60")
	for range 4 {
		ok("b", "pb") // b's window opened 10.5 s into a's first one and holds 5
	}
	limited("b", "pb", "11")

	if n := srv.Requests(oauthtest.EndpointIntrospect); n != 3+5+2+1+1+5+1+4+1 {
		t.Errorf("Requests = %d: 429s must be counted", n)
	}
	var statuses []int
	for _, c := range srv.IntrospectionCalls() {
		statuses = append(statuses, c.Status)
	}
	if got := fmt.Sprint(statuses); got != "[401 401 401 200 200 200 200 200 429 429 200 429 200 200 200 200 200 429 200 200 200 200 429]" {
		t.Errorf("statuses %s", got)
	}

	// A fault comes before the limit and does not use it up.
	srv.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: 503, Times: 1})
	clock.Advance(time.Hour)
	if r, err := srv.Client().Do(introspectRequest(t, srv, url.Values{"token": {tok}}, []string{"a", "pa"})); err != nil || r.StatusCode != 503 {
		t.Fatalf("fault: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	for range 5 {
		ok("a", "pa")
	}
	limited("a", "pa", "60") // a full window left
}

func TestIntrospectionRateLimitWindowAndSharedBucket(t *testing.T) {
	clock := newFakeClock()
	srv := newServer(t, oauthtest.Options{
		Algorithms: []string{"EdDSA"}, Now: clock.Now, IntrospectionAuth: "none",
		IntrospectionRateLimit: 2, IntrospectionRateWindow: 10 * time.Second,
	})
	srv.RegisterClient("a", "pa")
	srv.RegisterClient("b", "pb")
	tok := srv.MintOpaque(nil)
	statusOf := func(basic []string) (int, string) {
		r := do(t, srv, introspectRequest(t, srv, url.Values{"token": {tok}}, basic))
		return r.status, r.header.Get("Retry-After")
	}
	// Without authentication, every caller shares one count.
	if s, _ := statusOf([]string{"a", "pa"}); s != 200 {
		t.Fatalf("status %d", s)
	}
	if s, _ := statusOf([]string{"b", "pb"}); s != 200 {
		t.Fatalf("status %d", s)
	}
	clock.Advance(3 * time.Second)
	if s, ra := statusOf(nil); s != 429 || ra != "7" {
		t.Errorf("third call: %d Retry-After %q, want 429 and 7", s, ra)
	}
	clock.Advance(7 * time.Second)
	if s, _ := statusOf(nil); s != 200 {
		t.Errorf("next window: status %d", s)
	}

	for _, o := range []oauthtest.Options{{IntrospectionRateLimit: -1}, {IntrospectionRateWindow: -time.Second}} {
		mustPanic(t, "negative", func() { oauthtest.NewUnstartedServer(o).Close() })
	}
}

func TestTokenEndpointOpaqueTokens(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}, OpaqueTokens: true})
	srv.RegisterClient("svc", "s3cret", "read", "write")
	srv.RegisterClient("other", "pw")
	srv.RegisterClient(rsID, rsSecret)
	r := postToken(t, srv, url.Values{"grant_type": {"client_credentials"}}, []string{"svc", "s3cret"})
	tok, _ := r.body["access_token"].(string)
	if r.status != 200 || len(tok) != 43 || strings.Contains(tok, ".") || r.body["token_type"] != "Bearer" || r.body["expires_in"] != 3600.0 {
		t.Fatalf("token response %d %v", r.status, r.body)
	}
	b := introspect(t, srv, tok).body
	if b["active"] != true || b["client_id"] != "svc" || b["sub"] != "svc" || b["scope"] != "read write" {
		t.Errorf("introspection %v", b)
	}
	// The opaque token authenticates its client at the introspection endpoint.
	req := introspectRequest(t, srv, url.Values{"token": {tok}}, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if r := do(t, srv, req); r.status != 200 || lastCall(t, srv).ClientID != "svc" || lastCall(t, srv).AuthMethod != "bearer" {
		t.Errorf("bearer: %d %v %+v", r.status, r.body, lastCall(t, srv))
	}

	// RFC 7009 revocation.
	doc := getDoc(t, srv, srv.ServerMetadataURL())
	if doc["revocation_endpoint"] != srv.RevocationURL() || srv.RevocationURL() != srv.URL+"/oauth/revoke" {
		t.Errorf("revocation_endpoint %v, RevocationURL %q", doc["revocation_endpoint"], srv.RevocationURL())
	}
	revoke := func(form url.Values, basic []string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.RevocationURL(), strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic != nil {
			req.SetBasicAuth(basic[0], basic[1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if s, body := revoke(url.Values{"token": {tok}}, []string{"other", "pw"}); s != 400 || !strings.Contains(body, "unauthorized_client") {
		t.Errorf("another client's token: %d %s", s, body)
	}
	if s, body := revoke(url.Values{"token": {tok}}, []string{"svc", "wrong"}); s != 401 || !strings.Contains(body, "invalid_client") {
		t.Errorf("wrong secret: %d %s", s, body)
	}
	if s, _ := revoke(url.Values{}, []string{"svc", "s3cret"}); s != 400 {
		t.Errorf("no token: %d", s)
	}
	if !active(t, srv, tok) {
		t.Fatal("refused revocations revoked the token")
	}
	if s, body := revoke(url.Values{"token": {tok}, "token_type_hint": {"access_token"}}, []string{"svc", "s3cret"}); s != 200 || body != "" {
		t.Errorf("revoke: %d %q", s, body)
	}
	if active(t, srv, tok) {
		t.Error("revoked token active")
	}
	if s, _ := revoke(url.Values{"token": {"unknown"}}, []string{"other", "pw"}); s != 200 {
		t.Errorf("unknown token: %d, want 200 (RFC 7009 §2.2)", s)
	}
	if n := srv.Requests(oauthtest.EndpointRevoke); n != 5 {
		t.Errorf("revoke count %d", n)
	}
}

func TestIntrospectionConcurrent(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"ES256"}, IntrospectionRateLimit: 1000})
	srv.RegisterClient(rsID, rsSecret)
	jwt := srv.Mint(nil)
	const workers, each = 50, 6
	var wg sync.WaitGroup
	errs := make(chan error, workers*(3*each+1))
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := srv.MintOpaque(oauthtest.Claims{"sub": fmt.Sprint("user-", i)})
			doomed := srv.MintOpaque(nil)
			for j := range each {
				if j == each/2 {
					srv.Revoke(doomed)
				}
				for _, tc := range []struct {
					token string
					want  bool
				}{{jwt, true}, {mine, true}, {doomed, j < each/2}} {
					form := url.Values{"token": {tc.token}}
					req, _ := http.NewRequest(http.MethodPost, srv.IntrospectionURL(), strings.NewReader(form.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth(rsID, rsSecret)
					resp, err := srv.Client().Do(req)
					if err != nil {
						errs <- err
						return
					}
					var body map[string]any
					err = json.NewDecoder(resp.Body).Decode(&body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || body["active"] != tc.want {
						errs <- fmt.Errorf("worker %d: %d %v %v, want active %v", i, resp.StatusCode, body, err, tc.want)
						return
					}
					if tc.token == mine && body["sub"] != fmt.Sprint("user-", i) {
						errs <- fmt.Errorf("worker %d got the claims of %v", i, body["sub"])
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			_ = srv.IntrospectionCalls()
			_ = srv.Requests(oauthtest.EndpointIntrospect)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(srv.IntrospectionCalls()); n != workers*each*3 {
		t.Errorf("%d calls recorded, want %d", n, workers*each*3)
	}
}

func TestOpaqueTokenPrefix(t *testing.T) {
	srv := newServer(t, oauthtest.Options{OpaqueTokens: true, OpaqueTokenPrefix: "ory_at_"})
	srv.RegisterClient("svc", "s3cret")
	srv.RegisterClient(rsID, rsSecret)
	minted := srv.MintOpaque(oauthtest.Claims{"sub": "bob"})
	r := postToken(t, srv, url.Values{"grant_type": {"client_credentials"}}, []string{"svc", "s3cret"})
	issued, _ := r.body["access_token"].(string)
	for name, tok := range map[string]string{"minted": minted, "issued": issued} {
		if !strings.HasPrefix(tok, "ory_at_") || len(tok) != len("ory_at_")+43 {
			t.Errorf("%s token %q lacks the prefix", name, tok)
		}
		if !active(t, srv, tok) {
			t.Errorf("%s token is not active", name)
		}
	}
	if active(t, srv, strings.TrimPrefix(minted, "ory_at_")) {
		t.Error("the token without its prefix is active")
	}
	mustPanic(t, "OpaqueTokenPrefix", func() { oauthtest.NewServer(oauthtest.Options{OpaqueTokenPrefix: "a.b"}) })
}

func TestIntrospectionJWTResponse(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	srv.RegisterClient(rsID, rsSecret)
	tok := srv.MintOpaque(oauthtest.Claims{"sub": "bob"})
	req := introspectRequest(t, srv, url.Values{"token": {tok}}, []string{rsID, rsSecret})
	req.Header.Set("Accept", "application/json;q=0.5, application/token-introspection+jwt")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/token-introspection+jwt" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	parts := strings.Split(string(body), ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", body)
	}
	var header, claims map[string]any
	for i, v := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(raw, v) != nil {
			t.Fatalf("part %d: %v", i, err)
		}
	}
	ti, _ := claims["token_introspection"].(map[string]any)
	if header["typ"] != "token-introspection+jwt" || header["alg"] != "ES256" || claims["iss"] != srv.Issuer || claims["aud"] != rsID || claims["iat"] == nil || ti["active"] != true || ti["sub"] != "bob" {
		t.Errorf("header %v, claims %v", header, claims)
	}
	// Without the media type in Accept, the answer is plain JSON.
	if b := introspect(t, srv, tok).body; b["active"] != true {
		t.Errorf("JSON answer %v", b)
	}
}
