package introspect_test

import (
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard/introspect"
)

func TestNewRejects(t *testing.T) {
	const ep = "https://as.example/oauth/introspect"
	tests := []struct {
		name   string
		cfg    introspect.Config
		errHas string
	}{
		{"no endpoint", introspect.Config{}, "Endpoint is required"},
		{"http endpoint", introspect.Config{Endpoint: "http://as.example/introspect"}, "https required"},
		{"relative endpoint", introspect.Config{Endpoint: "/introspect"}, "not absolute"},
		{"endpoint with user info", introspect.Config{Endpoint: "https://u:p@as.example/introspect"}, "user info"},
		{"unknown method", introspect.Config{Endpoint: ep, AuthMethod: "private_key_jwt"}, "unknown AuthMethod"},
		{"basic without secret", introspect.Config{Endpoint: ep, AuthMethod: introspect.AuthClientSecretBasic, ClientID: "id"}, "needs ClientID and ClientSecret"},
		{"post without id", introspect.Config{Endpoint: ep, AuthMethod: introspect.AuthClientSecretPost, ClientSecret: "s"}, "needs ClientID and ClientSecret"},
		{"bearer without token", introspect.Config{Endpoint: ep, AuthMethod: introspect.AuthBearer}, "needs BearerToken or TokenEndpoint"},
		{"bearer with both", introspect.Config{Endpoint: ep, BearerToken: "t", TokenEndpoint: "https://as.example/token", ClientID: "i", ClientSecret: "s"}, "not both"},
		{"token endpoint without secret", introspect.Config{Endpoint: ep, TokenEndpoint: "https://as.example/token", ClientID: "i"}, "needs ClientID and ClientSecret"},
		{"http token endpoint", introspect.Config{Endpoint: ep, TokenEndpoint: "http://as.example/token", ClientID: "i", ClientSecret: "s"}, "TokenEndpoint"},
		{"bearer token with basic", introspect.Config{Endpoint: ep, AuthMethod: introspect.AuthClientSecretBasic, ClientID: "i", ClientSecret: "s", BearerToken: "t"}, "need AuthMethod bearer"},
		{"negative timeout", introspect.Config{Endpoint: ep, Timeout: -1}, "negative"},
		{"server needs auth, no id", introspect.Config{Endpoint: ep, SupportedAuthMethods: []string{"client_secret_basic"}}, "requires client authentication"},
		{"no usable server method", introspect.Config{Endpoint: ep, ClientID: "i", ClientSecret: "s", SupportedAuthMethods: []string{"private_key_jwt", "tls_client_auth"}}, "set AuthMethod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := introspect.New(tc.cfg)
			if err == nil {
				t.Fatalf("New succeeded with method %s, want an error containing %q", c.AuthMethod(), tc.errHas)
			}
			if !strings.Contains(err.Error(), tc.errHas) || !strings.HasPrefix(err.Error(), "introspect: ") {
				t.Errorf("err = %q, want it to start with the package name and contain %q", err, tc.errHas)
			}
		})
	}
}

func TestAuthMethodChoice(t *testing.T) {
	const ep = "https://as.example/oauth/introspect"
	telnyx := []string{"none", "client_secret_basic", "client_secret_post"}
	tests := []struct {
		name string
		cfg  introspect.Config
		want introspect.AuthMethod
	}{
		{"explicit wins over the list", introspect.Config{AuthMethod: introspect.AuthClientSecretPost, ClientID: "i", ClientSecret: "s", SupportedAuthMethods: telnyx}, introspect.AuthClientSecretPost},
		{"list prefers basic", introspect.Config{ClientID: "i", ClientSecret: "s", SupportedAuthMethods: telnyx}, introspect.AuthClientSecretBasic},
		{"list without basic", introspect.Config{ClientID: "i", ClientSecret: "s", SupportedAuthMethods: []string{"private_key_jwt", "client_secret_post"}}, introspect.AuthClientSecretPost},
		{"list, no client id", introspect.Config{SupportedAuthMethods: telnyx}, introspect.AuthNone},
		{"no list, client id", introspect.Config{ClientID: "i", ClientSecret: "s"}, introspect.AuthClientSecretBasic},
		{"no list, no client id", introspect.Config{}, introspect.AuthNone},
		{"static bearer token", introspect.Config{BearerToken: "t", SupportedAuthMethods: telnyx}, introspect.AuthBearer},
		{"token endpoint", introspect.Config{TokenEndpoint: "https://as.example/token", ClientID: "i", ClientSecret: "s", SupportedAuthMethods: telnyx}, introspect.AuthBearer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Endpoint = ep
			c, err := introspect.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.AuthMethod(); got != tc.want {
				t.Errorf("AuthMethod() = %s, want %s", got, tc.want)
			}
		})
	}
}
