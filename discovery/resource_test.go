package discovery_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/discovery"
	"github.com/tokenguard/tokenguard/internal/fetch"
)

const prmPath = "/.well-known/oauth-protected-resource"

func TestFetchResource(t *testing.T) {
	tests := []struct {
		name string
		tls  bool // serve https and use the server's client without the insecure opt-in
		// routes of the fake server; BASE in a body is the server's origin.
		routes map[string]route
		// metadataPath and resource are appended to the server's origin;
		// "" passes an empty string.
		metadataPath string
		resource     string
		client       discovery.Client // HTTPClient and InsecureAllowHTTP are set by the test
		wantErr      error
		errHas       string
		wantHits     int // requests the server must receive; -1 skips the check
		check        func(t *testing.T, base string, md *discovery.ResourceMetadata)
	}{
		{
			name: "ok at root, resource derived, unknown members kept",
			routes: map[string]route{prmPath: {body: `{
				"resource": "BASE",
				"authorization_servers": ["BASE/as"],
				"scopes_supported": ["read", "write"],
				"bearer_methods_supported": ["header"],
				"jwks_uri": "BASE/jwks",
				"resource_name": "Example",
				"custom_member": {"nested": [1, 2]},
				"Resource": "not the resource member"
			}`}},
			metadataPath: prmPath,
			wantHits:     1,
			check: func(t *testing.T, base string, md *discovery.ResourceMetadata) {
				if md.Resource != base || md.URL != base+prmPath {
					t.Errorf("Resource, URL = %q, %q", md.Resource, md.URL)
				}
				if !slices.Equal(md.AuthorizationServers, []string{base + "/as"}) || md.JWKSURI != base+"/jwks" || md.ResourceName != "Example" {
					t.Errorf("document = %+v", md)
				}
				if !slices.Equal(md.ScopesSupported, []string{"read", "write"}) || !slices.Equal(md.BearerMethodsSupported, []string{"header"}) {
					t.Errorf("scopes, bearer methods = %q, %q", md.ScopesSupported, md.BearerMethodsSupported)
				}
				if len(md.Extra) != 2 || string(md.Extra["custom_member"]) != `{"nested": [1, 2]}` || string(md.Extra["Resource"]) != `"not the resource member"` {
					t.Errorf("Extra = %q", md.Extra)
				}
			},
		},
		{
			name: "ok with path, explicit resource",
			routes: map[string]route{prmPath + "/v2/mcp": {
				body: `{"resource":"BASE/v2/mcp","authorization_servers":["BASE"]}`,
			}},
			metadataPath: prmPath + "/v2/mcp",
			resource:     "/v2/mcp",
			wantHits:     1,
			check: func(t *testing.T, base string, md *discovery.ResourceMetadata) {
				if md.Resource != base+"/v2/mcp" || md.Extra != nil {
					t.Errorf("Resource = %q, Extra = %q", md.Resource, md.Extra)
				}
			},
		},
		{
			name: "metadata URL derived from resource",
			routes: map[string]route{prmPath + "/v2/mcp": {
				body: `{"resource":"BASE/v2/mcp","authorization_servers":["BASE"]}`,
			}},
			resource: "/v2/mcp",
			wantHits: 1,
			check: func(t *testing.T, base string, md *discovery.ResourceMetadata) {
				if md.URL != base+prmPath+"/v2/mcp" {
					t.Errorf("URL = %q", md.URL)
				}
			},
		},
		{
			name: "query kept",
			routes: map[string]route{prmPath + "/v2?tenant=a": {
				body: `{"resource":"BASE/v2?tenant=a","authorization_servers":["BASE"]}`,
			}},
			metadataPath: prmPath + "/v2?tenant=a",
			wantHits:     1,
		},
		{
			name: "https without opt-in",
			tls:  true,
			routes: map[string]route{prmPath: {
				body: `{"resource":"BASE","authorization_servers":["BASE"],"jwks_uri":"BASE/jwks"}`,
			}},
			metadataPath: prmPath,
			wantHits:     1,
		},
		{
			name:         "resource mismatch",
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE/other","authorization_servers":["BASE"]}`}},
			metadataPath: prmPath,
			wantErr:      discovery.ErrResourceMismatch,
			errHas:       "/other",
			wantHits:     1,
		},
		{
			name:         "resource of another host",
			routes:       map[string]route{prmPath: {body: `{"resource":"https://evil.example","authorization_servers":["BASE"]}`}},
			metadataPath: prmPath,
			wantErr:      discovery.ErrResourceMismatch,
			wantHits:     1,
		},
		{
			name:         "root slash tolerated",
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE/","authorization_servers":["BASE"]}`}},
			metadataPath: prmPath,
			wantHits:     1,
		},
		{
			name:         "root slash tolerated the other way",
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE","authorization_servers":["BASE"]}`}},
			metadataPath: prmPath,
			resource:     "/",
			wantHits:     1,
		},
		{
			name:         "trailing slash on a path is a mismatch",
			routes:       map[string]route{prmPath + "/v2/mcp": {body: `{"resource":"BASE/v2/mcp/","authorization_servers":["BASE"]}`}},
			metadataPath: prmPath + "/v2/mcp",
			wantErr:      discovery.ErrResourceMismatch,
			wantHits:     1,
		},
		{
			name:         "missing trailing slash on a path is a mismatch",
			routes:       map[string]route{prmPath + "/v2/": {body: `{"resource":"BASE/v2","authorization_servers":["BASE"]}`}},
			metadataPath: prmPath + "/v2/",
			wantErr:      discovery.ErrResourceMismatch,
			wantHits:     1,
		},
		{
			name:         "missing resource",
			routes:       map[string]route{prmPath: {body: `{"authorization_servers":["BASE"]}`}},
			metadataPath: prmPath,
			errHas:       "required member resource is missing",
			wantHits:     1,
		},
		{
			name:         "resource member matched case-sensitively",
			routes:       map[string]route{prmPath: {body: `{"RESOURCE":"BASE","authorization_servers":["BASE"]}`}},
			metadataPath: prmPath,
			errHas:       "required member resource is missing",
			wantHits:     1,
		},
		{
			name:         "missing authorization_servers",
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE"}`}},
			metadataPath: prmPath,
			errHas:       "authorization_servers is missing or empty",
			wantHits:     1,
		},
		{
			name:         "empty authorization_servers",
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE","authorization_servers":[]}`}},
			metadataPath: prmPath,
			errHas:       "authorization_servers is missing or empty",
			wantHits:     1,
		},
		{
			name:         "authorization server with a query",
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE","authorization_servers":["BASE/as?x=1"]}`}},
			metadataPath: prmPath,
			errHas:       "authorization_servers[0]",
			wantHits:     1,
		},
		{
			name:         "http authorization server without opt-in",
			tls:          true,
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE","authorization_servers":["BASE","http://as.example.com"]}`}},
			metadataPath: prmPath,
			wantErr:      discovery.ErrInsecureURL,
			errHas:       "authorization_servers[1]",
			wantHits:     1,
		},
		{
			name:         "http jwks_uri without opt-in",
			tls:          true,
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE","authorization_servers":["BASE"],"jwks_uri":"http://as.example.com/jwks"}`}},
			metadataPath: prmPath,
			wantErr:      discovery.ErrInsecureURL,
			errHas:       "jwks_uri",
			wantHits:     1,
		},
		{
			name:         "member of the wrong type",
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE","authorization_servers":"BASE"}`}},
			metadataPath: prmPath,
			errHas:       "member authorization_servers",
			wantHits:     1,
		},
		{
			name:         "duplicate member",
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE","authorization_servers":["BASE"],"resource":"https://evil.example"}`}},
			metadataPath: prmPath,
			errHas:       `member "resource" appears more than once`,
			wantHits:     1,
		},
		{
			name:         "not an object",
			routes:       map[string]route{prmPath: {body: `["BASE"]`}},
			metadataPath: prmPath,
			errHas:       "not a JSON object",
			wantHits:     1,
		},
		{
			name:         "null",
			routes:       map[string]route{prmPath: {body: `null`}},
			metadataPath: prmPath,
			errHas:       "not a JSON object",
			wantHits:     1,
		},
		{
			name:         "trailing data",
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE","authorization_servers":["BASE"]} {}`}},
			metadataPath: prmPath,
			errHas:       "trailing data",
			wantHits:     1,
		},
		{
			name:         "truncated JSON",
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE","authorization_servers":["BASE"]`}},
			metadataPath: prmPath,
			errHas:       "invalid JSON",
			wantHits:     1,
		},
		{
			name:         "missing comma",
			routes:       map[string]route{prmPath: {body: `{"resource":"BASE" "authorization_servers":["BASE"]}`}},
			metadataPath: prmPath,
			errHas:       "invalid JSON",
			wantHits:     1,
		},
		{
			name:         "HTML body",
			routes:       map[string]route{prmPath: {ctype: "text/html; charset=utf-8", body: `<html><body>Sign in</body></html>`}},
			metadataPath: prmPath,
			errHas:       "is not JSON",
			wantHits:     1,
		},
		{
			name:         "status 500",
			routes:       map[string]route{prmPath: {status: http.StatusInternalServerError, body: `{}`}},
			metadataPath: prmPath,
			wantErr:      fetch.ErrStatus,
			errHas:       "status 500",
			wantHits:     1,
		},
		{
			name:         "status 404",
			metadataPath: prmPath,
			wantErr:      discovery.ErrNotFound,
			errHas:       "status 404",
			wantHits:     1,
		},
		{
			name: "oversized with Content-Length",
			routes: map[string]route{prmPath: {
				body: `{"resource":"BASE","authorization_servers":["BASE"],"pad":"` + strings.Repeat("x", 200) + `"}`,
			}},
			metadataPath: prmPath,
			client:       discovery.Client{MaxBytes: 128},
			wantErr:      fetch.ErrTooLarge,
			wantHits:     1,
		},
		{
			name: "oversized without Content-Length",
			routes: map[string]route{prmPath: {handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				for range 10 {
					_, _ = w.Write([]byte(strings.Repeat(" ", 50)))
					w.(http.Flusher).Flush()
				}
			}}},
			metadataPath: prmPath,
			client:       discovery.Client{MaxBytes: 128},
			wantErr:      discovery.ErrTooLarge,
			wantHits:     1,
		},
		{
			name: "exactly at the size cap",
			routes: map[string]route{prmPath: {handler: func(w http.ResponseWriter, r *http.Request) {
				base := "http://" + r.Host
				doc := `{"resource":"` + base + `","authorization_servers":["` + base + `"]}`
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(doc + strings.Repeat(" ", 128-len(doc))))
			}}},
			metadataPath: prmPath,
			client:       discovery.Client{MaxBytes: 128},
			wantHits:     1,
		},
		{
			name: "timeout",
			routes: map[string]route{prmPath: {handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}}},
			metadataPath: prmPath,
			client:       discovery.Client{Timeout: 100 * time.Millisecond},
			wantErr:      context.DeadlineExceeded,
			wantHits:     1,
		},
		{
			name:         "no well-known segment and no resource",
			metadataPath: "/metadata.json",
			errHas:       "pass the resource identifier",
			wantHits:     0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t, tc.tls, tc.routes)
			c := tc.client
			if tc.tls {
				c.HTTPClient = srv.Client()
			} else {
				c.InsecureAllowHTTP = true
			}
			var metadataURL, resource string
			if tc.metadataPath != "" {
				metadataURL = srv.URL + tc.metadataPath
			}
			if tc.resource != "" {
				resource = srv.URL + tc.resource
			}
			start := time.Now()
			md, err := c.FetchResource(context.Background(), metadataURL, resource)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("FetchResource took %v", d)
			}
			checkErr(t, err, tc.wantErr, tc.errHas)
			if err != nil {
				if md != nil {
					t.Errorf("got a document with an error: %+v", md)
				}
				if metadataURL != "" && !strings.Contains(err.Error(), metadataURL) {
					t.Errorf("error %q does not name %s", err, metadataURL)
				}
			}
			if got := srv.requests(); tc.wantHits >= 0 && len(got) != tc.wantHits {
				t.Errorf("server got %d requests %q, want %d", len(got), got, tc.wantHits)
			}
			if tc.check != nil && md != nil {
				tc.check(t, srv.URL, md)
			}
		})
	}
}

func TestFetchResourceRequiresHTTPS(t *testing.T) {
	srv := newFake(t, false, map[string]route{
		prmPath: {body: `{"resource":"BASE","authorization_servers":["BASE"]}`},
	})
	tests := []struct {
		name                  string
		metadataURL, resource string
	}{
		{name: "metadata URL", metadataURL: srv.URL + prmPath},
		{name: "metadata URL derived from resource", resource: srv.URL},
		{name: "both given", metadataURL: srv.URL + prmPath, resource: srv.URL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c discovery.Client // zero value: https only
			md, err := c.FetchResource(context.Background(), tc.metadataURL, tc.resource)
			checkErr(t, err, discovery.ErrInsecureURL, srv.URL)
			if md != nil {
				t.Errorf("got a document: %+v", md)
			}
		})
	}
	if got := srv.requests(); len(got) != 0 {
		t.Errorf("server got %d requests %q, want none", len(got), got)
	}
}

func TestFetchResourceServerDown(t *testing.T) {
	srv := newFake(t, false, nil)
	metadataURL := srv.URL + prmPath
	srv.Close() // nothing listens there any more

	c := discovery.Client{InsecureAllowHTTP: true, Timeout: 2 * time.Second}
	md, err := c.FetchResource(context.Background(), metadataURL, "")
	checkErr(t, err, nil, metadataURL)
	if md != nil {
		t.Errorf("got a document: %+v", md)
	}
}

func TestFetchResourceNeitherArgument(t *testing.T) {
	var c discovery.Client
	_, err := c.FetchResource(context.Background(), "", "")
	checkErr(t, err, nil, "neither a metadata URL nor a resource identifier")
}

func TestFetchResourceCanceledContext(t *testing.T) {
	srv := newFake(t, false, map[string]route{
		prmPath: {body: `{"resource":"BASE","authorization_servers":["BASE"]}`},
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := discovery.Client{InsecureAllowHTTP: true}
	_, err := c.FetchResource(ctx, srv.URL+prmPath, "")
	checkErr(t, err, context.Canceled, srv.URL)
}
