package oauthtest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestTokenEndpoint(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"ES256"}, Now: func() time.Time { return fixedNow }})
	srv.RegisterClient("svc", "s3cret", "read", "write")
	srv.RegisterClient("a:b", "p@ss w%rd+:x", "read")
	srv.RegisterClient("public", "", "read")
	esc := url.QueryEscape
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(extra ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}}
		for i := 0; i < len(extra); i += 2 {
			v.Add(extra[i], extra[i+1])
		}
		return v
	}
	tests := []struct {
		name      string
		form      url.Values
		basic     []string
		status    int
		err       string
		client    string
		scope     string
		challenge bool
	}{
		{name: "basic", form: cc, basic: []string{"svc", "s3cret"}, status: 200, client: "svc", scope: "read write"},
		{name: "basic, encoded special characters", form: cc, basic: []string{esc("a:b"), esc("p@ss w%rd+:x")}, status: 200, client: "a:b", scope: "read"},
		{name: "basic, special characters not encoded", form: cc, basic: []string{"a:b", "p@ss w%rd+:x"}, status: 401, err: "invalid_client", challenge: true},
		{name: "post", form: with("client_id", "svc", "client_secret", "s3cret"), status: 200, client: "svc", scope: "read write"},
		{name: "post, special characters", form: with("client_id", "a:b", "client_secret", "p@ss w%rd+:x"), status: 200, client: "a:b", scope: "read"},
		{name: "scope subset", form: with("scope", "write"), basic: []string{"svc", "s3cret"}, status: 200, client: "svc", scope: "write"},
		{name: "scope repeated inside", form: with("scope", "read read"), basic: []string{"svc", "s3cret"}, status: 200, client: "svc", scope: "read"},
		{name: "scope not allowed", form: with("scope", "read admin"), basic: []string{"svc", "s3cret"}, status: 400, err: "invalid_scope"},
		{name: "wrong secret, basic", form: cc, basic: []string{"svc", "nope"}, status: 401, err: "invalid_client", challenge: true},
		{name: "wrong secret, post", form: with("client_id", "svc", "client_secret", "nope"), status: 401, err: "invalid_client", challenge: true},
		{name: "unknown client", form: cc, basic: []string{"who", "s3cret"}, status: 401, err: "invalid_client", challenge: true},
		{name: "no authentication", form: cc, status: 401, err: "invalid_client", challenge: true},
		{name: "confidential client without secret", form: with("client_id", "svc"), status: 401, err: "invalid_client", challenge: true},
		{name: "two methods", form: with("client_secret", "s3cret"), basic: []string{"svc", "s3cret"}, status: 400, err: "invalid_request"},
		{name: "client_id differs from basic", form: with("client_id", "other"), basic: []string{"svc", "s3cret"}, status: 400, err: "invalid_request"},
		{name: "unsupported grant", form: url.Values{"grant_type": {"password"}}, basic: []string{"svc", "s3cret"}, status: 400, err: "unsupported_grant_type"},
		{name: "missing grant", form: url.Values{}, basic: []string{"svc", "s3cret"}, status: 400, err: "invalid_request"},
		{name: "repeated parameter", form: url.Values{"grant_type": {"client_credentials", "client_credentials"}}, basic: []string{"svc", "s3cret"}, status: 400, err: "invalid_request"},
		{name: "public client", form: with("client_id", "public"), status: 400, err: "unauthorized_client"},
		{name: "public client sending a secret", form: with("client_id", "public", "client_secret", ""), status: 401, err: "invalid_client", challenge: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := postToken(t, srv, tc.form, tc.basic)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %v", r.status, tc.status, r.body)
			}
			if got := r.header.Get("WWW-Authenticate"); (got != "") != tc.challenge {
				t.Errorf("WWW-Authenticate %q", got)
			}
			if tc.err != "" {
				if r.body["error"] != tc.err || r.body["error_description"] == "" {
					t.Errorf("body %v, want error %s with a description", r.body, tc.err)
				}
				return
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
			}
			if r.body["token_type"] != "Bearer" || r.body["expires_in"] != 3600.0 || r.body["scope"] != tc.scope {
				t.Errorf("body = %v", r.body)
			}
			tok, _ := r.body["access_token"].(string)
			_, c := verifyToken(t, srv, tok, "ES256")
			if c["sub"] != tc.client || c["client_id"] != tc.client || c["scope"] != tc.scope || c["iss"] != srv.Issuer {
				t.Errorf("claims = %v", c)
			}
			if exp := numericClaim(t, c, "exp"); exp != fixedNow.Add(time.Hour).Unix() {
				t.Errorf("exp = %d", exp)
			}
		})
	}
}

func TestTokenEndpointNoScopes(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	srv.RegisterClient("bare", "pw")
	r := postToken(t, srv, url.Values{"grant_type": {"client_credentials"}}, []string{"bare", "pw"})
	if r.status != 200 {
		t.Fatalf("status %d: %v", r.status, r.body)
	}
	if _, ok := r.body["scope"]; ok {
		t.Errorf("response has a scope: %v", r.body)
	}
	_, c, _ := splitJWS(t, r.body["access_token"].(string))
	if _, ok := c["scope"]; ok {
		t.Errorf("token has a scope claim: %v", c)
	}
}

func TestTokenEndpointRequestShape(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	srv.RegisterClient("svc", "pw", "read")
	t.Run("JSON body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.TokenURL(), strings.NewReader(`{"grant_type":"client_credentials"}`))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("svc", "pw")
		if r := do(t, srv, req); r.status != 400 || r.body["error"] != "invalid_request" {
			t.Errorf("%d %v", r.status, r.body)
		}
	})
	t.Run("credentials in the query are ignored", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.TokenURL()+"?client_id=svc&client_secret=pw",
			strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := do(t, srv, req); r.status != 401 {
			t.Errorf("%d %v", r.status, r.body)
		}
	})
	t.Run("GET", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, srv.TokenURL(), nil)
		r := do(t, srv, req)
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
			t.Errorf("%d %v %v", r.status, r.header, r.body)
		}
	})
	t.Run("Bearer authorization", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.TokenURL(), strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer abc")
		if r := do(t, srv, req); r.status != 401 || r.body["error"] != "invalid_client" {
			t.Errorf("%d %v", r.status, r.body)
		}
	})
}

func register(t *testing.T, srv *oauthtest.Server, contentType, body string) tokenResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.RegistrationURL(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	return do(t, srv, req)
}

func TestRegister(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}, Now: func() time.Time { return fixedNow }})
	r := register(t, srv, "application/json",
		`{"client_name":"My App","scope":"read write","grant_types":["client_credentials"],"client_id":"chosen","x_extra":1}`)
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %v", r.status, r.body)
	}
	id, _ := r.body["client_id"].(string)
	secret, _ := r.body["client_secret"].(string)
	if id == "" || id == "chosen" || len(secret) < 16 {
		t.Errorf("client_id %q, client_secret %q", id, secret)
	}
	if r.body["client_id_issued_at"] != float64(fixedNow.Unix()) || r.body["client_secret_expires_at"] != 0.0 ||
		r.body["client_name"] != "My App" || r.body["scope"] != "read write" || r.body["x_extra"] != 1.0 ||
		r.body["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Errorf("body = %v", r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
	}
	if gt, _ := json.Marshal(r.body["grant_types"]); string(gt) != `["client_credentials"]` {
		t.Errorf("grant_types = %s", gt)
	}

	// The registered client gets tokens, and its scopes are advertised.
	tr := postToken(t, srv, url.Values{"grant_type": {"client_credentials"}}, []string{url.QueryEscape(id), url.QueryEscape(secret)})
	if tr.status != 200 || tr.body["scope"] != "read write" {
		t.Fatalf("token: %d %v", tr.status, tr.body)
	}
	if s, _ := json.Marshal(getDoc(t, srv, srv.ServerMetadataURL())["scopes_supported"]); string(s) != `["read","write"]` {
		t.Errorf("scopes_supported = %s", s)
	}
	if srv.Requests(oauthtest.EndpointRegister) != 1 {
		t.Errorf("register count %d", srv.Requests(oauthtest.EndpointRegister))
	}

	t.Run("public client", func(t *testing.T) {
		r := register(t, srv, "application/json; charset=utf-8", `{"token_endpoint_auth_method":"none","redirect_uris":["http://localhost/cb"]}`)
		if r.status != http.StatusCreated || r.body["token_endpoint_auth_method"] != "none" {
			t.Fatalf("%d %v", r.status, r.body)
		}
		for _, name := range []string{"client_secret", "client_secret_expires_at", "scope"} {
			if _, ok := r.body[name]; ok {
				t.Errorf("public client response has %s: %v", name, r.body)
			}
		}
	})

	bad := []struct{ name, contentType, body string }{
		{"not JSON", "application/json", `{"client_name":`},
		{"array", "application/json", `[]`},
		{"null", "application/json", `null`},
		{"two objects", "application/json", `{} {}`},
		{"form", "application/x-www-form-urlencoded", `client_name=x`},
		{"auth method", "application/json", `{"token_endpoint_auth_method":"private_key_jwt"}`},
		{"scope not a string", "application/json", `{"scope":["read"]}`},
		{"redirect_uris not strings", "application/json", `{"redirect_uris":[1]}`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := register(t, srv, tc.contentType, tc.body)
			if r.status != 400 || r.body["error"] != "invalid_client_metadata" {
				t.Errorf("%d %v", r.status, r.body)
			}
		})
	}
}

func TestRegisterClientPanicsOnEmptyID(t *testing.T) {
	srv := oauthtest.NewUnstartedServer(oauthtest.Options{Algorithms: []string{"EdDSA"}})
	defer srv.Close()
	mustPanic(t, "empty client id", func() { srv.RegisterClient("", "x") })
}
