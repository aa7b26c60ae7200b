package oauthtest_test

import (
	"context"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func newGuard(t *testing.T, cfg tokenguard.Config) *tokenguard.Guard {
	t.Helper()
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// seen records what a protected handler was given.
type seen struct {
	called    bool
	principal *tokenguard.Principal
}

func (s *seen) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.called = true
		s.principal, _ = tokenguard.PrincipalFrom(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
}

func TestPrincipalRequireScopes(t *testing.T) {
	srv := newServer(t, oauthtest.Options{})
	g := newGuard(t, srv.GuardConfig())
	tests := []struct {
		name   string
		claims oauthtest.Claims
		want   int
	}{
		{"scope granted", oauthtest.Claims{"scope": "read write"}, http.StatusNoContent},
		{"wrong scope", oauthtest.Claims{"scope": "write"}, http.StatusForbidden},
		{"no scope", nil, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rec seen
			h := g.RequireScopes("read")(rec.handler())
			p := srv.Principal(g, tc.claims)
			r := srv.WithPrincipal(httptest.NewRequest("GET", "/orders", nil), g, tc.claims)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want || rec.called != (tc.want == http.StatusNoContent) {
				t.Fatalf("status %d, handler called %t; want %d", w.Code, rec.called, tc.want)
			}
			if tc.want == http.StatusForbidden {
				if c := w.Header().Get("WWW-Authenticate"); !strings.Contains(c, `error="insufficient_scope"`) || !strings.Contains(c, `scope="read"`) {
					t.Errorf("challenge %q", c)
				}
				if _, err := g.Check(r, tokenguard.AllScopes("read")); err == nil {
					t.Error("Check accepted the Principal without the scope")
				}
			} else if rec.principal == nil || !rec.principal.HasScope("read") {
				t.Errorf("handler got Principal %+v", rec.principal)
			}
			// The same holds for Principal put into a request by hand.
			r = httptest.NewRequest("GET", "/orders", nil)
			r = r.WithContext(tokenguard.WithPrincipal(r.Context(), p))
			w = httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("Principal by hand: status %d, want %d", w.Code, tc.want)
			}
		})
	}
}

// The Principal is g's: another Guard's requirements do not honour it and
// authenticate the request (which has no token) instead.
func TestPrincipalOfAnotherGuard(t *testing.T) {
	srv := newServer(t, oauthtest.Options{})
	g1 := newGuard(t, srv.GuardConfig())
	g2 := newGuard(t, srv.GuardConfig())
	var rec seen
	r := srv.WithPrincipal(httptest.NewRequest("GET", "/", nil), g1, oauthtest.Claims{"scope": "read"})
	w := httptest.NewRecorder()
	g2.RequireScopes("read")(rec.handler()).ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || rec.called {
		t.Errorf("status %d, handler called %t; want 401 from the other guard", w.Code, rec.called)
	}
}

func TestPrincipalClaims(t *testing.T) {
	srv := newServer(t, oauthtest.Options{})
	g := newGuard(t, srv.GuardConfig())
	p := srv.Principal(g, oauthtest.Claims{
		"sub":       "alice",
		"scope":     "read",
		"tenant":    "acme",
		"groups":    []string{"admins", "ops"},
		"client_id": nil, // nil removes a default, as in Mint
	})
	if p.Subject != "alice" || p.Issuer != srv.Issuer || p.Kind != tokenguard.KindJWT ||
		!reflect.DeepEqual(p.Scopes, []string{"read"}) || !reflect.DeepEqual(p.Audience, []string{srv.Resource()}) {
		t.Errorf("Principal %+v", p)
	}
	if p.ClientID != "" {
		t.Errorf("ClientID %q, want none (removed)", p.ClientID)
	}
	var claims struct {
		Tenant   string   `json:"tenant"`
		Groups   []string `json:"groups"`
		ClientID *string  `json:"client_id"`
		JTI      string   `json:"jti"`
		Exp      int64    `json:"exp"`
	}
	if err := p.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Tenant != "acme" || !reflect.DeepEqual(claims.Groups, []string{"admins", "ops"}) ||
		claims.ClientID != nil || claims.JTI == "" || claims.Exp <= time.Now().Unix() {
		t.Errorf("claims %+v", claims)
	}
	r := srv.WithPrincipal(httptest.NewRequest("GET", "/", nil), g, oauthtest.Claims{"tenant": "acme"})
	if _, err := g.Check(r, tokenguard.ClaimIs("tenant", "acme")); err != nil {
		t.Errorf("ClaimIs(tenant, acme): %v", err)
	}
	if _, err := g.Check(r, tokenguard.ClaimIs("tenant", "other")); err == nil {
		t.Error("ClaimIs(tenant, other) passed")
	}
}

func TestPrincipalPanicsWhenRefused(t *testing.T) {
	srv := newServer(t, oauthtest.Options{})
	other := newServer(t, oauthtest.Options{})
	g := newGuard(t, srv.GuardConfig())
	tests := []struct {
		name   string
		srv    *oauthtest.Server
		claims oauthtest.Claims
		want   []string
	}{
		{"untrusted server", other, nil, []string{"401 issuer_untrusted: untrusted issuer: ", other.Issuer, "Server.GuardConfig"}},
		{"expired", srv, oauthtest.Claims{"exp": time.Now().Add(-time.Hour)}, []string{"401 token_expired: token expired"}},
		{"wrong audience", srv, oauthtest.Claims{"aud": "https://elsewhere.example"}, []string{"audience_mismatch", "token not meant for this resource"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := func() (msg string) {
				defer func() { msg = fmt.Sprint(recover()) }()
				tc.srv.Principal(g, tc.claims)
				return
			}()
			if !strings.HasPrefix(msg, "oauthtest: Principal: ") {
				t.Fatalf("panic %q", msg)
			}
			for _, want := range tc.want {
				if !strings.Contains(msg, want) {
					t.Errorf("panic %q does not say %q", msg, want)
				}
			}
			if strings.Contains(msg, "eyJ") { // every JWT starts so: base64url of `{"`
				t.Errorf("panic %q holds a token", msg)
			}
		})
	}
	mustPanic(t, "nil Guard", func() { srv.Principal(nil, nil) })
}

func TestGuardConfig(t *testing.T) {
	srv := newServer(t, oauthtest.Options{})
	cfg := srv.GuardConfig()
	want := tokenguard.Config{
		Issuer:              srv.Issuer,
		Resource:            srv.URL + "/api",
		ResourceMetadataURL: srv.URL + "/.well-known/oauth-protected-resource/api",
		InsecureAllowHTTP:   true,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("GuardConfig() = %+v\nwant %+v", cfg, want)
	}
	g := newGuard(t, cfg)
	if g.Resource() != srv.Resource() || g.ResourceMetadataURL() != srv.ResourceMetadataURL() ||
		!reflect.DeepEqual(g.Issuers(), []string{srv.Issuer}) {
		t.Errorf("guard: resource %q, metadata %q, issuers %v", g.Resource(), g.ResourceMetadataURL(), g.Issuers())
	}
	// The challenge names the document the server serves, which names the
	// resource and the server.
	w := httptest.NewRecorder()
	g.Handler(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if c := w.Header().Get("WWW-Authenticate"); w.Code != 401 || !strings.Contains(c, `resource_metadata="`+srv.ResourceMetadataURL()+`"`) {
		t.Errorf("status %d, challenge %q", w.Code, c)
	}
	doc := getDoc(t, srv, srv.ResourceMetadataURL())
	if doc["resource"] != srv.Resource() || !reflect.DeepEqual(doc["authorization_servers"], []any{srv.Issuer}) {
		t.Errorf("document %v", doc)
	}
	// Audience is left to default to Resource, so the opt-out can be set.
	cfg.InsecureSkipAudienceCheck = true
	lax := newGuard(t, cfg)
	if p := srv.Principal(lax, oauthtest.Claims{"aud": "https://elsewhere.example"}); p.Audience[0] != "https://elsewhere.example" {
		t.Errorf("audience %v", p.Audience)
	}
}

func TestGuardConfigTLS(t *testing.T) {
	srv := oauthtest.NewUnstartedServer(oauthtest.Options{Algorithms: []string{"ES256"}, IssuerPath: "/tenant"})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cfg := srv.GuardConfig()
	if cfg.InsecureAllowHTTP || cfg.HTTPClient != srv.Client() || cfg.Issuer != srv.Issuer ||
		!strings.HasPrefix(cfg.Issuer, "https://") || !strings.HasSuffix(cfg.Issuer, "/tenant") {
		t.Fatalf("GuardConfig() = %+v", cfg)
	}
	g := newGuard(t, cfg)
	p := srv.Principal(g, oauthtest.Claims{"sub": "alice"})
	if p.Subject != "alice" || p.Issuer != srv.Issuer {
		t.Errorf("Principal %+v", p)
	}
	// Without the server's client, its certificate is not trusted.
	cfg.HTTPClient = nil
	if _, err := tokenguard.New(context.Background(), cfg); err == nil {
		t.Error("New without the server's client trusted its certificate")
	}
}

// A resource named by absolute URL lives elsewhere; the challenge names the
// document this server serves for it, which exists.
func TestGuardConfigAbsoluteResource(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Resource: "https://api.example.com/orders"})
	cfg := srv.GuardConfig()
	if cfg.Resource != "https://api.example.com/orders" || cfg.ResourceMetadataURL != srv.URL+"/.well-known/oauth-protected-resource/orders" {
		t.Fatalf("GuardConfig() = %+v", cfg)
	}
	if doc := getDoc(t, srv, cfg.ResourceMetadataURL); doc["resource"] != cfg.Resource {
		t.Errorf("document %v", doc)
	}
	g := newGuard(t, cfg)
	if p := srv.Principal(g, nil); !reflect.DeepEqual(p.Audience, []string{cfg.Resource}) {
		t.Errorf("audience %v", p.Audience)
	}
}

func TestGuardHelpersBeforeStart(t *testing.T) {
	srv := oauthtest.NewUnstartedServer(oauthtest.Options{Algorithms: []string{"EdDSA"}})
	defer srv.Close()
	mustPanic(t, "GuardConfig before the server started", func() { srv.GuardConfig() })
	mustPanic(t, "BearerClient before the server started", func() { srv.BearerClient("t") })
}

func TestBearerClient(t *testing.T) {
	srv := newServer(t, oauthtest.Options{})
	var (
		mu  sync.Mutex
		got []string
	)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, strings.Join(r.Header.Values("Authorization"), "|"))
	}))
	t.Cleanup(echo.Close)
	c := srv.BearerClient("tok-1")
	defer c.CloseIdleConnections()

	req, _ := http.NewRequest("GET", echo.URL, nil)
	req.Header.Set("X-Test", "1")
	before := req.Header.Clone()
	send := func(req *http.Request) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	send(req)
	if !reflect.DeepEqual(req.Header, before) {
		t.Errorf("caller's request changed: header %v, was %v", req.Header, before)
	}
	send(req) // the same request again: still one header
	// A request with no header map at all.
	send(&http.Request{Method: "GET", URL: req.URL})
	// The caller's own Authorization is sent as it is.
	own, _ := http.NewRequest("GET", echo.URL, nil)
	own.Header.Set("Authorization", "Basic Zm9vOmJhcg==")
	send(own)
	want := []string{"Bearer tok-1", "Bearer tok-1", "Bearer tok-1", "Basic Zm9vOmJhcg=="}
	mu.Lock()
	defer mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("server saw Authorization %q, want %q", got, want)
	}
}

func TestBearerClientGuard(t *testing.T) {
	srv := newServer(t, oauthtest.Options{})
	g := newGuard(t, srv.GuardConfig())
	api := httptest.NewServer(g.RequireScopes("read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		io.WriteString(w, p.Subject)
	})))
	t.Cleanup(api.Close)
	for _, tc := range []struct {
		token string
		want  int
	}{
		{srv.Mint(oauthtest.Claims{"sub": "alice", "scope": "read"}), 200},
		{srv.Mint(oauthtest.Claims{"scope": "write"}), 403},
		{"not-a-token", 401},
	} {
		resp, err := srv.BearerClient(tc.token).Get(api.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || (tc.want == 200 && string(body) != "alice") {
			t.Errorf("status %d body %q, want %d", resp.StatusCode, body, tc.want)
		}
	}
}

// After StartTLS the client trusts httptest's certificate, on this server
// and on other TLS test servers.
func TestBearerClientTLS(t *testing.T) {
	srv := oauthtest.NewUnstartedServer(oauthtest.Options{Algorithms: []string{"EdDSA"}})
	srv.StartTLS()
	t.Cleanup(srv.Close)
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Authorization"))
	}))
	t.Cleanup(api.Close)
	resp, err := srv.BearerClient("tok").Get(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if body, _ := io.ReadAll(resp.Body); string(body) != "Bearer tok" {
		t.Errorf("server saw %q", body)
	}
}

// Only guard.go may import anything outside the standard library: the
// server must stay an independent check of the code it tests.
func TestOnlyGuardHelpersImportTokenguard(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if !strings.Contains(first, ".") {
				continue // standard library
			}
			if name != "guard.go" || path != "github.com/tokenguard/tokenguard" {
				t.Errorf("%s imports %s", name, path)
			}
		}
	}
}
