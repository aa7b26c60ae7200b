package tgchi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

const (
	rsClient, rsSecret = "tgchi-test-rs", "tgchi test secret"
)

// newGuard starts an authorization server and a Guard trusting it, with
// introspection for opaque tokens; both are closed when t ends.
func newGuard(t *testing.T) (*oauthtest.Server, *tokenguard.Guard) {
	t.Helper()
	as := oauthtest.NewServer(oauthtest.Options{})
	t.Cleanup(as.Close)
	as.RegisterClient(rsClient, rsSecret)
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true,
		Introspection:       tokenguard.IntrospectionConfig{ClientID: rsClient, ClientSecret: rsSecret},
	})
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return as, g
}

// do sends a request to h, with a bearer token unless token is "".
func do(h http.Handler, method, path, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// who writes the subject of the request's Principal, or "-", followed by
// extra.
func who(extra func(r *http.Request) string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sub := "-"
		if p, ok := tokenguard.PrincipalFrom(r.Context()); ok {
			sub = p.Subject
		}
		if extra != nil {
			sub += " " + extra(r)
		}
		_, _ = w.Write([]byte(sub))
	}
}
