package oauthtest_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestDiscoveryPaths(t *testing.T) {
	tests := []struct {
		name       string
		opts       oauthtest.Options
		issuerPath string
		rfc8414    string // "" when not served
		openid     string
		notFound   []string
	}{
		{
			name:     "issuer is the URL",
			rfc8414:  "/.well-known/oauth-authorization-server",
			openid:   "/.well-known/openid-configuration",
			notFound: []string{"/.well-known/oauth-authorization-server/", "/tenant/.well-known/openid-configuration"},
		},
		{
			name:       "issuer with a path",
			opts:       oauthtest.Options{IssuerPath: "/tenant"},
			issuerPath: "/tenant",
			rfc8414:    "/.well-known/oauth-authorization-server/tenant",
			openid:     "/tenant/.well-known/openid-configuration",
			notFound:   []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/tenant/.well-known/oauth-authorization-server"},
		},
		{
			name:       "issuer with a trailing slash",
			opts:       oauthtest.Options{IssuerPath: "/"},
			issuerPath: "/",
			rfc8414:    "/.well-known/oauth-authorization-server",
			openid:     "/.well-known/openid-configuration",
			notFound:   []string{"/.well-known/oauth-authorization-server/", "//.well-known/openid-configuration"},
		},
		{
			name:       "issuer path with a trailing slash",
			opts:       oauthtest.Options{IssuerPath: "/tenant/"},
			issuerPath: "/tenant/",
			rfc8414:    "/.well-known/oauth-authorization-server/tenant",
			openid:     "/tenant/.well-known/openid-configuration",
			notFound:   []string{"/.well-known/oauth-authorization-server/tenant/"},
		},
		{
			name:     "OpenID only",
			opts:     oauthtest.Options{OpenIDOnly: true},
			openid:   "/.well-known/openid-configuration",
			notFound: []string{"/.well-known/oauth-authorization-server"},
		},
		{
			name:       "OpenID only, issuer with a path",
			opts:       oauthtest.Options{OpenIDOnly: true, IssuerPath: "/tenant"},
			issuerPath: "/tenant",
			openid:     "/tenant/.well-known/openid-configuration",
			notFound:   []string{"/.well-known/oauth-authorization-server/tenant", "/.well-known/oauth-authorization-server"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Algorithms = []string{"EdDSA"}
			srv := newServer(t, tc.opts)
			if srv.Issuer != srv.URL+tc.issuerPath {
				t.Fatalf("Issuer = %q", srv.Issuer)
			}
			check := func(path string) {
				t.Helper()
				doc := getDoc(t, srv, srv.URL+path)
				want := map[string]any{
					"issuer":                 srv.Issuer,
					"authorization_endpoint": srv.URL + "/oauth/authorize",
					"token_endpoint":         srv.URL + "/oauth/token",
					"jwks_uri":               srv.URL + "/oauth/jwks",
					"introspection_endpoint": srv.URL + "/oauth/introspect",
					"registration_endpoint":  srv.URL + "/oauth/register",
				}
				for name, v := range want {
					if doc[name] != v {
						t.Errorf("%s: %s = %v, want %v", path, name, doc[name], v)
					}
				}
				lists := map[string]string{
					"scopes_supported":                      `[]`,
					"response_types_supported":              `["code"]`,
					"grant_types_supported":                 `["client_credentials"]`,
					"token_endpoint_auth_methods_supported": `["none","client_secret_basic","client_secret_post"]`,
					"code_challenge_methods_supported":      `["S256"]`,
				}
				for name, v := range lists {
					if got, _ := json.Marshal(doc[name]); string(got) != v {
						t.Errorf("%s: %s = %s, want %s", path, name, got, v)
					}
				}
			}
			if tc.rfc8414 != "" {
				if got := srv.ServerMetadataURL(); got != srv.URL+tc.rfc8414 {
					t.Errorf("ServerMetadataURL() = %q", got)
				}
				check(tc.rfc8414)
				if n := srv.Requests(oauthtest.EndpointServerMetadata); n != 1 {
					t.Errorf("server_metadata count %d", n)
				}
			}
			if got := srv.OpenIDConfigurationURL(); got != srv.URL+tc.openid {
				t.Errorf("OpenIDConfigurationURL() = %q", got)
			}
			check(tc.openid)
			if n := srv.Requests(oauthtest.EndpointOpenIDConfiguration); n != 1 {
				t.Errorf("openid_configuration count %d", n)
			}
			for _, p := range tc.notFound {
				if status, _, _ := get(t, srv, srv.URL+p); status != http.StatusNotFound {
					t.Errorf("GET %s: status %d, want 404", p, status)
				}
			}
		})
	}
}

func TestResourceMetadata(t *testing.T) {
	tests := []struct {
		name         string
		opts         oauthtest.Options
		resource     func(url string) string
		metadataPath string
		rootResource func(url string) string // resource of the root document
	}{
		{
			name:         "default",
			resource:     func(u string) string { return u + "/api" },
			metadataPath: "/.well-known/oauth-protected-resource/api",
			rootResource: func(u string) string { return u },
		},
		{
			name:         "relative path",
			opts:         oauthtest.Options{Resource: "/v2/mcp"},
			resource:     func(u string) string { return u + "/v2/mcp" },
			metadataPath: "/.well-known/oauth-protected-resource/v2/mcp",
			rootResource: func(u string) string { return u },
		},
		{
			name:         "trailing slash after the host",
			opts:         oauthtest.Options{Resource: "/"},
			resource:     func(u string) string { return u + "/" },
			metadataPath: "/.well-known/oauth-protected-resource",
			rootResource: func(u string) string { return u + "/" },
		},
		{
			name:         "path with a trailing slash",
			opts:         oauthtest.Options{Resource: "/api/"},
			resource:     func(u string) string { return u + "/api/" },
			metadataPath: "/.well-known/oauth-protected-resource/api/",
			rootResource: func(u string) string { return u },
		},
		{
			name:         "absolute",
			opts:         oauthtest.Options{Resource: "https://api.example.com/v2"},
			resource:     func(string) string { return "https://api.example.com/v2" },
			metadataPath: "/.well-known/oauth-protected-resource/v2",
			rootResource: func(string) string { return "https://api.example.com" },
		},
		{
			name:         "absolute without a path",
			opts:         oauthtest.Options{Resource: "https://api.example.com"},
			resource:     func(string) string { return "https://api.example.com" },
			metadataPath: "/.well-known/oauth-protected-resource",
			rootResource: func(string) string { return "https://api.example.com" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Algorithms = []string{"EdDSA"}
			tc.opts.Scopes = []string{"read", "write"}
			tc.opts.IssuerPath = "/tenant"
			srv := newServer(t, tc.opts)
			if got := srv.Resource(); got != tc.resource(srv.URL) {
				t.Errorf("Resource() = %q", got)
			}
			if got := srv.ResourceMetadataURL(); got != srv.URL+tc.metadataPath {
				t.Errorf("ResourceMetadataURL() = %q, want %q", got, srv.URL+tc.metadataPath)
			}
			doc := getDoc(t, srv, srv.ResourceMetadataURL())
			got, _ := json.Marshal(doc)
			want, _ := json.Marshal(map[string]any{
				"resource":                 srv.Resource(),
				"authorization_servers":    []string{srv.URL + "/tenant"},
				"scopes_supported":         []string{"read", "write"},
				"bearer_methods_supported": []string{"header"},
			})
			if string(got) != string(want) {
				t.Errorf("document = %s\nwant %s", got, want)
			}
			root := getDoc(t, srv, srv.URL+"/.well-known/oauth-protected-resource")
			if root["resource"] != tc.rootResource(srv.URL) {
				t.Errorf("root document resource = %v", root["resource"])
			}
			if n := srv.Requests(oauthtest.EndpointResourceMetadata); n != 2 {
				t.Errorf("resource_metadata count %d", n)
			}
			// The minted audience is the resource.
			if _, c, _ := splitJWS(t, srv.Mint(nil)); c["aud"] != srv.Resource() {
				t.Errorf("aud = %v", c["aud"])
			}
		})
	}
}

func TestPrefix(t *testing.T) {
	tests := []struct{ prefix, want string }{
		{"", "/oauth"},
		{"/v2/oauth", "/v2/oauth"},
		{"/v2/oauth/", "/v2/oauth"},
		{"/", ""},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}, Prefix: tc.prefix})
			urls := map[string]string{
				srv.JWKSURL():          "/jwks",
				srv.TokenURL():         "/token",
				srv.IntrospectionURL(): "/introspect",
				srv.RegistrationURL():  "/register",
				srv.AuthorizationURL(): "/authorize",
			}
			for got, suffix := range urls {
				if got != srv.URL+tc.want+suffix {
					t.Errorf("got %q, want %q", got, srv.URL+tc.want+suffix)
				}
			}
			if len(fetchJWKS(t, srv)) != 1 {
				t.Error("JWKS not served at the prefix")
			}
			doc := getDoc(t, srv, srv.ServerMetadataURL())
			if doc["jwks_uri"] != srv.JWKSURL() || doc["token_endpoint"] != srv.TokenURL() {
				t.Errorf("metadata = %v", doc)
			}
		})
	}
}

func TestStubEndpoints(t *testing.T) {
	srv := newServer(t, oauthtest.Options{Algorithms: []string{"EdDSA"}})
	req, _ := http.NewRequest(http.MethodGet, srv.AuthorizationURL(), nil)
	if r := do(t, srv, req); r.status != http.StatusNotImplemented || r.body["error"] == nil {
		t.Errorf("authorize: %d %v", r.status, r.body)
	}
	if srv.Requests(oauthtest.EndpointAuthorize) != 1 {
		t.Errorf("count %d", srv.Requests(oauthtest.EndpointAuthorize))
	}
}
