package tokenguard_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestRequireScopes(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	read := as.Mint(oauthtest.Claims{"scope": "orders:read"})
	both := as.Mint(oauthtest.Claims{"scope": "orders:read orders:write"})

	var rc reached
	wrapped := g.Handler(g.RequireScopes("orders:read", "orders:write")(rc.handler()))
	alone := g.RequireScopes("orders:read", "orders:write")(rc.handler()) // no Handler in front

	for _, h := range []http.Handler{wrapped, alone} {
		rc = reached{}
		w := call(h, "Bearer "+read)
		if w.Code != http.StatusForbidden || rc.called {
			t.Fatalf("missing scope: %d, reached %v", w.Code, rc.called)
		}
		want := `Bearer realm="` + g.Resource() + `", error="insufficient_scope", error_description="token lacks a required scope", scope="orders:read orders:write", resource_metadata="` + g.ResourceMetadataURL() + `"`
		if got := w.Header().Get("WWW-Authenticate"); got != want {
			t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, want)
		}
		if !strings.Contains(w.Body.String(), `"scope":"orders:read orders:write"`) {
			t.Errorf("body %s", w.Body.String())
		}
		rc = reached{}
		if w := call(h, "Bearer "+both); w.Code != 200 || !rc.called || rc.principal == nil {
			t.Errorf("all scopes: %d, reached %v", w.Code, rc.called)
		}
		rc = reached{}
		if w := call(h, ""); w.Code != 401 || rc.called {
			t.Errorf("RequireScopes without a token: %d, reached %v", w.Code, rc.called)
		}
	}
}

func TestChallengeEscaping(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{Realm: "evil\"\r\nSet-Cookie: x=1\\"})
	w := call(g.RequireScopes("a\"b", "c\nd")(http.NotFoundHandler()), "Bearer "+as.Mint(nil))
	got := w.Header().Get("WWW-Authenticate")
	want := `Bearer realm="evil\"Set-Cookie: x=1\\", error="insufficient_scope", error_description="token lacks a required scope", scope="ab cd", resource_metadata="` + g.ResourceMetadataURL() + `"`
	if got != want {
		t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, want)
	}
	if w.Header().Get("Set-Cookie") != "" {
		t.Error("header injected")
	}
}

func TestCustomErrorFromValidateClaims(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{ValidateClaims: func(context.Context, *tokenguard.Principal) error {
		return &tokenguard.Error{Status: http.StatusForbidden, Code: tokenguard.CodeInsufficientScope, Description: "tenant suspended", Scopes: []string{"tenant:active"}}
	}})
	w := call(g.Handler(http.NotFoundHandler()), "Bearer "+as.Mint(nil))
	want := `Bearer realm="` + g.Resource() + `", error="insufficient_scope", error_description="tenant suspended", scope="tenant:active", resource_metadata="` + g.ResourceMetadataURL() + `"`
	if w.Code != 403 || w.Header().Get("WWW-Authenticate") != want {
		t.Errorf("%d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestAuthenticateErrorsMatchSentinels(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	for _, tc := range []struct {
		auth string
		want error
	}{
		{"", tokenguard.ErrNoToken},
		{"Bearer a b", tokenguard.ErrInvalidRequest},
		{"Bearer abc.def.ghi", tokenguard.ErrInvalidToken},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		p, err := g.Authenticate(r)
		if p != nil || !errors.Is(err, tc.want) {
			t.Errorf("%q: %v, want %v", tc.auth, err, tc.want)
		}
		var e *tokenguard.Error
		if !errors.As(err, &e) || e.Status == 0 {
			t.Errorf("%q: not an *Error: %v", tc.auth, err)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+as.Mint(nil))
	if p, err := g.Authenticate(r); err != nil || p == nil {
		t.Errorf("valid token: %v", err)
	}
}

func TestLogsNeverContainTheToken(t *testing.T) {
	as := shared(t)
	var buf bytes.Buffer
	g := newGuard(t, as, tokenguard.Config{Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	tokens := []string{
		as.Mint(oauthtest.Claims{"aud": "https://other"}),
		as.Mint(oauthtest.Claims{"exp": 1}),
		"opaque-secret-token-value",
	}
	for _, tok := range tokens {
		call(g.Handler(http.NotFoundHandler()), "Bearer "+tok)
	}
	if !strings.Contains(buf.String(), "request rejected") {
		t.Fatalf("nothing logged: %q", buf.String())
	}
	for _, tok := range tokens {
		for _, part := range strings.Split(tok, ".") {
			if len(part) > 8 && strings.Contains(buf.String(), part) {
				t.Errorf("log contains part of a token: %s", part)
			}
		}
	}
}
