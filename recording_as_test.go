package tokenguard_test

import (
	"context"
	"encoding/base64"
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

// recordingAS is an authorization server that the test controls
// completely, including to lie: it serves RFC 8414 metadata (at the root,
// or with tenants for every /t/<name>), the key set of an oauthtest server
// (which signs its JWTs), an introspection endpoint that answers what
// answer says, and a token endpoint. It records every request it gets, so
// a test can prove what it was never sent.
type recordingAS struct {
	*httptest.Server
	keys    *oauthtest.Server
	tenants bool

	mu     sync.Mutex
	log    []recordedRequest
	known  map[string]map[string]any                 // tokens minted here, and their claims
	answer func(issuer, token string) map[string]any // overrides known; nil answer: {"active": false}
}

// recordedRequest is one request as the server saw it.
type recordedRequest struct {
	Path          string
	Authorization string
	User, Pass    string // Basic credentials, form-decoded (RFC 6749 §2.3.1)
	Form          url.Values
}

func newRecordingAS(t *testing.T, tenants bool) *recordingAS {
	t.Helper()
	s := &recordingAS{keys: newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}}), tenants: tenants, known: map[string]map[string]any{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// issuer is the server's issuer, or a tenant's.
func (s *recordingAS) issuer(tenant string) string {
	if !s.tenants {
		return s.URL
	}
	return s.URL + "/t/" + tenant
}

// mint signs a JWT for the issuer of tenant (the defaults of
// oauthtest's Mint apply to the other claims); introspection answers it
// with its claims.
func (s *recordingAS) mint(tenant string, claims oauthtest.Claims) string {
	c := oauthtest.Claims{"iss": s.issuer(tenant)}
	for k, v := range claims {
		c[k] = v
	}
	tok := s.keys.Mint(c)
	s.remember(tok, c)
	return tok
}

// mintOpaque returns a new opaque token "<tenant>_<random>" of the issuer
// of tenant, which introspection answers with claims (iss set, a nil
// value left out).
func (s *recordingAS) mintOpaque(tenant string, claims oauthtest.Claims) string {
	tok := tenant + "_" + strings.TrimRight(s.keys.MintOpaque(nil), "=")
	c := oauthtest.Claims{"iss": s.issuer(tenant)}
	for k, v := range claims {
		c[k] = v
	}
	s.remember(tok, c)
	return tok
}

func (s *recordingAS) remember(token string, claims oauthtest.Claims) {
	m := map[string]any{"active": true}
	for k, v := range claims {
		if v != nil {
			m[k] = v
		}
	}
	s.mu.Lock()
	s.known[token] = m
	s.mu.Unlock()
}

func (s *recordingAS) setAnswer(f func(issuer, token string) map[string]any) {
	s.mu.Lock()
	s.answer = f
	s.mu.Unlock()
}

// requests returns what the server received on paths ending in suffix.
func (s *recordingAS) requests(suffix string) []recordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []recordedRequest
	for _, r := range s.log {
		if strings.HasSuffix(r.Path, suffix) {
			out = append(out, r)
		}
	}
	return out
}

// received reports the first request that carried any of secrets, in its
// Authorization header, its Basic credentials or any form value.
func (s *recordingAS) received(secrets ...string) (recordedRequest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.log {
		fields := []string{r.Authorization, r.User, r.Pass}
		for _, vs := range r.Form {
			fields = append(fields, vs...)
		}
		for _, f := range fields {
			for _, secret := range secrets {
				if secret != "" && strings.Contains(f, secret) {
					return r, true
				}
			}
		}
	}
	return recordedRequest{}, false
}

func (s *recordingAS) serve(w http.ResponseWriter, r *http.Request) {
	rec := recordedRequest{Path: r.URL.Path, Authorization: r.Header.Get("Authorization")}
	if u, p, ok := r.BasicAuth(); ok {
		rec.User, _ = url.QueryUnescape(u)
		rec.Pass, _ = url.QueryUnescape(p)
	}
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		rec.Form, _ = url.ParseQuery(string(body))
	}
	s.mu.Lock()
	s.log = append(s.log, rec)
	answer := s.answer
	known := s.known[rec.Form.Get("token")]
	s.mu.Unlock()

	path := r.URL.Path
	iss := s.URL
	if s.tenants && path != "/jwks" {
		rest, ok := strings.CutPrefix(strings.TrimPrefix(path, "/.well-known/oauth-authorization-server"), "/t/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		tenant, _, _ := strings.Cut(rest, "/")
		iss = s.URL + "/t/" + tenant
	}
	writeJSON := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case strings.HasPrefix(path, "/.well-known/oauth-authorization-server"):
		writeJSON(map[string]any{
			"issuer":                 iss,
			"jwks_uri":               s.URL + "/jwks",
			"introspection_endpoint": iss + "/introspect",
			"token_endpoint":         iss + "/token",
			"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic"},
			"token_endpoint_auth_methods_supported":         []string{"client_secret_basic"},
			"response_types_supported":                      []string{"code"},
		})
	case path == "/jwks":
		resp, err := http.Get(s.keys.JWKSURL())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.Copy(w, resp.Body)
	case strings.HasSuffix(path, "/introspect"):
		a := known
		if answer != nil {
			a = answer(iss, rec.Form.Get("token"))
		}
		if a == nil {
			a = map[string]any{"active": false}
		}
		if status, ok := a["_status"].(int); ok {
			// An error answer: {"_status": 429, "_retry_after": "300"}.
			if ra, ok := a["_retry_after"].(string); ok {
				w.Header().Set("Retry-After", ra)
			}
			body, _ := a["_body"].(string)
			if body != "" {
				w.Header().Set("Content-Type", "application/json")
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return
		}
		writeJSON(a)
	case strings.HasSuffix(path, "/token"):
		writeJSON(map[string]any{"access_token": "token-of-" + iss, "token_type": "Bearer", "expires_in": 3600})
	default:
		http.NotFound(w, r)
	}
}

// httptestJSON serves, at every path, the JSON document doc makes from the
// server's URL.
func httptestJSON(t *testing.T, doc func(url string) any) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc(srv.URL))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// newGuardAt builds a Guard from cfg (plain HTTP allowed) and closes it
// with the test.
func newGuardAt(t *testing.T, cfg tokenguard.Config) *tokenguard.Guard {
	t.Helper()
	cfg.InsecureAllowHTTP = true
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// base64URL is unpadded base64url of s.
func base64URL(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// httptestHandler serves h on loopback for the test.
func httptestHandler(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}
