package discovery_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard/discovery"
	"github.com/tokenguard/tokenguard/internal/fetch"
)

const (
	asPath   = "/.well-known/oauth-authorization-server"
	oidcPath = "/.well-known/openid-configuration"
)

// asDoc returns a server metadata document for the issuer BASE+path.
func asDoc(path string) string {
	return `{
		"issuer": "BASE` + path + `",
		"authorization_endpoint": "BASE` + path + `/authorize",
		"token_endpoint": "BASE` + path + `/token",
		"jwks_uri": "BASE` + path + `/jwks",
		"introspection_endpoint": "BASE` + path + `/introspect",
		"registration_endpoint": "BASE` + path + `/register",
		"scopes_supported": ["read"],
		"response_types_supported": ["code"],
		"grant_types_supported": ["authorization_code", "client_credentials"],
		"token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
		"code_challenge_methods_supported": ["S256"]
	}`
}

func TestFetchServer(t *testing.T) {
	tests := []struct {
		name   string
		tls    bool // serve https and use the server's client without the insecure opt-in
		routes map[string]route
		// issuerPath is appended to the server's origin to form the issuer.
		issuerPath string
		wantErr    error
		errHas     string
		// wantSeen lists the request URIs the server must receive, in order.
		wantSeen []string
		// wantURL is the path the document must have been fetched from.
		wantURL string
		check   func(t *testing.T, base string, md *discovery.ServerMetadata)
	}{
		{
			name:     "RFC 8414 document",
			routes:   map[string]route{asPath: {body: asDoc("")}},
			wantSeen: []string{asPath},
			wantURL:  asPath,
			check: func(t *testing.T, base string, md *discovery.ServerMetadata) {
				if md.Issuer != base || md.TokenEndpoint != base+"/token" || md.JWKSURI != base+"/jwks" ||
					md.IntrospectionEndpoint != base+"/introspect" || md.RegistrationEndpoint != base+"/register" ||
					md.AuthorizationEndpoint != base+"/authorize" {
					t.Errorf("document = %+v", md)
				}
				if !slices.Equal(md.TokenEndpointAuthMethodsSupported, []string{"none", "client_secret_basic", "client_secret_post"}) ||
					!slices.Equal(md.CodeChallengeMethodsSupported, []string{"S256"}) ||
					!slices.Equal(md.GrantTypesSupported, []string{"authorization_code", "client_credentials"}) {
					t.Errorf("document = %+v", md)
				}
				if md.Extra != nil {
					t.Errorf("Extra = %q, want nil", md.Extra)
				}
			},
		},
		{
			name:     "RFC 8414 document over https without opt-in",
			tls:      true,
			routes:   map[string]route{asPath: {body: asDoc("")}},
			wantSeen: []string{asPath},
			wantURL:  asPath,
		},
		{
			name: "unknown members kept",
			routes: map[string]route{asPath: {
				body: `{"issuer":"BASE","subject_types_supported":["public"],"mtls_endpoint_aliases":{"token_endpoint":"BASE/mtls/token"}}`,
			}},
			wantSeen: []string{asPath},
			wantURL:  asPath,
			check: func(t *testing.T, base string, md *discovery.ServerMetadata) {
				if len(md.Extra) != 2 || string(md.Extra["subject_types_supported"]) != `["public"]` ||
					string(md.Extra["mtls_endpoint_aliases"]) != `{"token_endpoint":"`+base+`/mtls/token"}` {
					t.Errorf("Extra = %q", md.Extra)
				}
			},
		},
		{
			name: "only OpenID configuration",
			routes: map[string]route{oidcPath: {body: `{
				"issuer": "BASE", "jwks_uri": "BASE/keys",
				"id_token_signing_alg_values_supported": ["RS256", "ES256"]
			}`}},
			wantSeen: []string{asPath, oidcPath},
			wantURL:  oidcPath,
			check: func(t *testing.T, base string, md *discovery.ServerMetadata) {
				if md.JWKSURI != base+"/keys" || !slices.Equal(md.IDTokenSigningAlgValuesSupported, []string{"RS256", "ES256"}) {
					t.Errorf("document = %+v", md)
				}
			},
		},
		{
			name:       "issuer with path, RFC 8414 form",
			routes:     map[string]route{asPath + "/dex": {body: asDoc("/dex")}},
			issuerPath: "/dex",
			wantSeen:   []string{asPath + "/dex"},
			wantURL:    asPath + "/dex",
		},
		{
			name:       "issuer with path, OpenID form",
			routes:     map[string]route{"/dex" + oidcPath: {body: asDoc("/dex")}},
			issuerPath: "/dex",
			wantSeen:   []string{asPath + "/dex", "/dex" + oidcPath},
			wantURL:    "/dex" + oidcPath,
		},
		{
			name:       "issuer with path, path-inserted OpenID form last",
			routes:     map[string]route{oidcPath + "/dex": {body: asDoc("/dex")}},
			issuerPath: "/dex",
			wantSeen:   []string{asPath + "/dex", "/dex" + oidcPath, oidcPath + "/dex"},
			wantURL:    oidcPath + "/dex",
		},
		{
			name:       "issuer with trailing slash, RFC 8414 form",
			routes:     map[string]route{asPath + "/tenant": {body: asDoc("/tenant/")}},
			issuerPath: "/tenant/",
			wantSeen:   []string{asPath + "/tenant"},
			wantURL:    asPath + "/tenant",
			check: func(t *testing.T, base string, md *discovery.ServerMetadata) {
				if md.Issuer != base+"/tenant/" {
					t.Errorf("Issuer = %q", md.Issuer)
				}
			},
		},
		{
			name:       "issuer with trailing slash, OpenID form",
			routes:     map[string]route{"/tenant" + oidcPath: {body: asDoc("/tenant/")}},
			issuerPath: "/tenant/",
			wantSeen:   []string{asPath + "/tenant", "/tenant" + oidcPath},
			wantURL:    "/tenant" + oidcPath,
		},
		{
			name:       "issuer with root slash",
			routes:     map[string]route{asPath: {body: asDoc("/")}},
			issuerPath: "/",
			wantSeen:   []string{asPath},
			wantURL:    asPath,
		},
		{
			name:       "root slash is still compared exactly",
			routes:     map[string]route{asPath: {body: asDoc("")}},
			issuerPath: "/",
			wantErr:    discovery.ErrIssuerMismatch,
			wantSeen:   []string{asPath},
		},
		{
			name: "issuer mismatch does not fall back",
			routes: map[string]route{
				asPath + "/dex":   {body: asDoc("/dex/")},
				"/dex" + oidcPath: {body: asDoc("/dex")},
			},
			issuerPath: "/dex",
			wantErr:    discovery.ErrIssuerMismatch,
			errHas:     asPath + "/dex",
			wantSeen:   []string{asPath + "/dex"},
		},
		{
			name: "issuer of another server",
			routes: map[string]route{
				asPath:   {body: `{"issuer":"https://evil.example"}`},
				oidcPath: {body: asDoc("")},
			},
			wantErr:  discovery.ErrIssuerMismatch,
			errHas:   "https://evil.example",
			wantSeen: []string{asPath},
		},
		{
			name:     "missing issuer",
			routes:   map[string]route{asPath: {body: `{"token_endpoint":"BASE/token"}`}},
			errHas:   "required member issuer is missing",
			wantSeen: []string{asPath},
		},
		{
			name: "status 500 does not fall back",
			routes: map[string]route{
				asPath:   {status: http.StatusInternalServerError, body: `{}`},
				oidcPath: {body: asDoc("")},
			},
			wantErr:  fetch.ErrStatus,
			errHas:   "status 500",
			wantSeen: []string{asPath},
		},
		{
			name: "status 400 does not fall back",
			routes: map[string]route{
				asPath:   {status: http.StatusBadRequest, body: `{}`},
				oidcPath: {body: asDoc("")},
			},
			wantErr:  fetch.ErrStatus,
			errHas:   "status 400",
			wantSeen: []string{asPath},
		},
		{
			name: "HTML does not fall back",
			routes: map[string]route{
				asPath:   {ctype: "text/html", body: `<html></html>`},
				oidcPath: {body: asDoc("")},
			},
			errHas:   "is not JSON",
			wantSeen: []string{asPath},
		},
		{
			name: "status 410 falls back",
			routes: map[string]route{
				asPath:   {status: http.StatusGone, body: `{}`},
				oidcPath: {body: asDoc("")},
			},
			wantSeen: []string{asPath, oidcPath},
			wantURL:  oidcPath,
		},
		{
			name:       "all not found",
			issuerPath: "/dex",
			wantErr:    discovery.ErrNotFound,
			errHas:     asPath + "/dex",
			wantSeen:   []string{asPath + "/dex", "/dex" + oidcPath, oidcPath + "/dex"},
		},
		{
			name:     "http endpoint without opt-in",
			tls:      true,
			routes:   map[string]route{asPath: {body: `{"issuer":"BASE","jwks_uri":"BASE/jwks","introspection_endpoint":"http://as.example.com/introspect"}`}},
			wantErr:  discovery.ErrInsecureURL,
			errHas:   "introspection_endpoint",
			wantSeen: []string{asPath},
		},
		{
			name:     "http token endpoint without opt-in",
			tls:      true,
			routes:   map[string]route{asPath: {body: `{"issuer":"BASE","token_endpoint":"http://as.example.com/token"}`}},
			wantErr:  discovery.ErrInsecureURL,
			errHas:   "token_endpoint",
			wantSeen: []string{asPath},
		},
		{
			name:     "relative endpoint",
			routes:   map[string]route{asPath: {body: `{"issuer":"BASE","jwks_uri":"/jwks"}`}},
			errHas:   "jwks_uri",
			wantSeen: []string{asPath},
		},
		{
			name:     "trailing data",
			routes:   map[string]route{asPath: {body: `{"issuer":"BASE"}x`}},
			errHas:   "trailing data",
			wantSeen: []string{asPath},
		},
		{
			name:       "issuer with a query",
			issuerPath: "/?tenant=a",
			errHas:     "must not have a query",
			wantSeen:   nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, tc.tls, tc.routes)
			var c discovery.Client
			if tc.tls {
				c.HTTPClient = srv.Client()
			} else {
				c.InsecureAllowHTTP = true
			}
			issuer := srv.URL + tc.issuerPath
			md, err := c.FetchServer(context.Background(), issuer)
			checkErr(t, err, tc.wantErr, tc.errHas)
			if got := srv.requests(); !slices.Equal(got, tc.wantSeen) {
				t.Errorf("server got requests %q, want %q", got, tc.wantSeen)
			}
			if err != nil {
				if md != nil {
					t.Errorf("got a document with an error: %+v", md)
				}
				return
			}
			if md.Issuer != issuer {
				t.Errorf("Issuer = %q, want %q", md.Issuer, issuer)
			}
			if md.URL != srv.URL+tc.wantURL {
				t.Errorf("URL = %q, want %q", md.URL, srv.URL+tc.wantURL)
			}
			if tc.check != nil {
				tc.check(t, srv.URL, md)
			}
		})
	}
}

func TestFetchServerNotFoundNamesEveryURL(t *testing.T) {
	srv := newFake(t, false, nil)
	c := discovery.Client{InsecureAllowHTTP: true}
	_, err := c.FetchServer(context.Background(), srv.URL+"/dex")
	checkErr(t, err, discovery.ErrNotFound, "")
	want, _ := discovery.ServerMetadataURLs(srv.URL + "/dex")
	if len(want) != 3 {
		t.Fatalf("candidates = %q", want)
	}
	for _, u := range want {
		if !strings.Contains(err.Error(), u) {
			t.Errorf("error %q does not name %s", err, u)
		}
	}
}

func TestFetchServerRequiresHTTPS(t *testing.T) {
	srv := newFake(t, false, map[string]route{asPath: {body: asDoc("")}})
	var c discovery.Client // zero value: https only
	md, err := c.FetchServer(context.Background(), srv.URL)
	checkErr(t, err, discovery.ErrInsecureURL, srv.URL)
	if md != nil {
		t.Errorf("got a document: %+v", md)
	}
	if got := srv.requests(); len(got) != 0 {
		t.Errorf("server got %d requests %q, want none", len(got), got)
	}
}

func TestFetchServerServerDown(t *testing.T) {
	srv := newFake(t, false, nil)
	issuer := srv.URL
	srv.Close()
	c := discovery.Client{InsecureAllowHTTP: true}
	_, err := c.FetchServer(context.Background(), issuer)
	checkErr(t, err, nil, issuer+asPath)
	if strings.Contains(err.Error(), oidcPath) {
		t.Errorf("error %q: a network failure must not fall back to the next URL", err)
	}
}
