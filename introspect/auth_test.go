package introspect_test

import (
	"encoding/base64"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/tokenguard/tokenguard/introspect"
)

// An id and a secret with every character RFC 6749 §2.3.1 makes a client
// encode: ':', '@', space, '%' and non-ASCII.
const (
	hardID     = "my:client@x y%z é"
	hardSecret = "p:a@s s%w ö"
	// Their application/x-www-form-urlencoded forms, written out by hand.
	hardIDEncoded     = "my%3Aclient%40x+y%25z+%C3%A9"
	hardSecretEncoded = "p%3Aa%40s+s%25w+%C3%B6"
)

func TestAuthMethodsOnTheWire(t *testing.T) {
	tests := []struct {
		name     string
		cfg      introspect.Config
		wantAuth string              // exact Authorization header; "" means none
		wantForm map[string][]string // the whole form body
	}{
		{
			name:     "client_secret_basic",
			cfg:      introspect.Config{AuthMethod: introspect.AuthClientSecretBasic, ClientID: hardID, ClientSecret: hardSecret},
			wantAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte(hardIDEncoded+":"+hardSecretEncoded)),
			wantForm: map[string][]string{"token": {secretToken}},
		},
		{
			name:     "client_secret_post",
			cfg:      introspect.Config{AuthMethod: introspect.AuthClientSecretPost, ClientID: hardID, ClientSecret: hardSecret},
			wantForm: map[string][]string{"token": {secretToken}, "client_id": {hardID}, "client_secret": {hardSecret}},
		},
		{
			name:     "static bearer",
			cfg:      introspect.Config{BearerToken: "static-bearer-1", ClientID: hardID},
			wantAuth: "Bearer static-bearer-1",
			wantForm: map[string][]string{"token": {secretToken}},
		},
		{
			name:     "none",
			cfg:      introspect.Config{AuthMethod: introspect.AuthNone, ClientID: hardID, ClientSecret: hardSecret},
			wantForm: map[string][]string{"token": {secretToken}},
		},
		{
			name:     "token type hint",
			cfg:      introspect.Config{SendTokenTypeHint: true},
			wantForm: map[string][]string{"token": {secretToken}, "token_type_hint": {"access_token"}},
		},
		{
			name:     "auto: post from the server's list",
			cfg:      introspect.Config{ClientID: hardID, ClientSecret: hardSecret, SupportedAuthMethods: []string{"client_secret_post", "private_key_jwt"}},
			wantForm: map[string][]string{"token": {secretToken}, "client_id": {hardID}, "client_secret": {hardSecret}},
		},
		{
			name:     "auto: basic from the server's list",
			cfg:      introspect.Config{ClientID: hardID, ClientSecret: hardSecret, SupportedAuthMethods: []string{"client_secret_post", "client_secret_basic"}},
			wantAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte(hardIDEncoded+":"+hardSecretEncoded)),
			wantForm: map[string][]string{"token": {secretToken}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n counter
			srv := server(t, func(w http.ResponseWriter, r *http.Request) {
				n.record(r)
				jsonReply(200, `{"active":true}`)(w, r)
			})
			cfg := tc.cfg
			cfg.Endpoint = srv.URL + "/oauth/introspect"
			if _, err := call(t, newClient(t, cfg)); err != nil {
				t.Fatal(err)
			}
			got := n.last(t)
			if got.method != http.MethodPost {
				t.Errorf("method = %s, want POST", got.method)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q", ct)
			}
			if a := got.header.Get("Accept"); a != "application/json" {
				t.Errorf("Accept = %q", a)
			}
			if a := got.header.Values("Authorization"); tc.wantAuth == "" && len(a) != 0 || tc.wantAuth != "" && !slices.Equal(a, []string{tc.wantAuth}) {
				t.Errorf("Authorization = %q, want %q", a, tc.wantAuth)
			}
			if got.err != nil {
				t.Fatalf("form: %v", got.err)
			}
			if !maps.EqualFunc(got.form, tc.wantForm, slices.Equal) {
				t.Errorf("form = %q, want %q", got.form, tc.wantForm)
			}
		})
	}
}

// The Basic header must decode back to the credentials the way a compliant
// server reads it: split at the first ':', then form-urldecode each half.
func TestBasicAuthRoundTrip(t *testing.T) {
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		uid, err1 := url.QueryUnescape(id)
		usecret, err2 := url.QueryUnescape(secret)
		if err1 != nil || err2 != nil || uid != hardID || usecret != hardSecret {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		jsonReply(200, `{"active":true}`)(w, r)
	})
	c := newClient(t, introspect.Config{Endpoint: srv.URL, ClientID: hardID, ClientSecret: hardSecret})
	if _, err := call(t, c); err != nil {
		t.Fatal(err)
	}
}
