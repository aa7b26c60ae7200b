package discovery_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard/discovery"
)

func TestResourceMetadataURL(t *testing.T) {
	tests := []struct {
		name     string
		resource string
		want     string
		wantErr  error  // checked with errors.Is when set
		errHas   string // substring of the error when set
	}{
		{name: "root without slash", resource: "https://api.example.com", want: "https://api.example.com/.well-known/oauth-protected-resource"},
		{name: "root with slash", resource: "https://api.example.com/", want: "https://api.example.com/.well-known/oauth-protected-resource"},
		{name: "path", resource: "https://api.example.com/v2/mcp", want: "https://api.example.com/.well-known/oauth-protected-resource/v2/mcp"},
		{name: "trailing slash kept", resource: "https://api.example.com/v2/mcp/", want: "https://api.example.com/.well-known/oauth-protected-resource/v2/mcp/"},
		{name: "query kept after path", resource: "https://api.example.com/v2?tenant=a", want: "https://api.example.com/.well-known/oauth-protected-resource/v2?tenant=a"},
		{name: "query at root", resource: "https://api.example.com?tenant=a", want: "https://api.example.com/.well-known/oauth-protected-resource?tenant=a"},
		{name: "port", resource: "https://api.example.com:8443/r", want: "https://api.example.com:8443/.well-known/oauth-protected-resource/r"},
		{name: "escaping kept", resource: "https://api.example.com/a%2Fb", want: "https://api.example.com/.well-known/oauth-protected-resource/a%2Fb"},
		{name: "http derived, checked when fetched", resource: "http://127.0.0.1:8080/r", want: "http://127.0.0.1:8080/.well-known/oauth-protected-resource/r"},
		{name: "fragment", resource: "https://api.example.com/r#frag", errHas: "fragment"},
		{name: "empty fragment", resource: "https://api.example.com/r#", errHas: "fragment"},
		{name: "other scheme", resource: "ftp://api.example.com/r", wantErr: discovery.ErrInsecureURL},
		{name: "relative", resource: "/v2/mcp", errHas: "not absolute"},
		{name: "user info", resource: "https://u:p@api.example.com/r", errHas: "user info"},
		{name: "empty", resource: "", errHas: "not absolute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := discovery.ResourceMetadataURL(tc.resource)
			checkErr(t, err, tc.wantErr, tc.errHas)
			if got != tc.want {
				t.Errorf("ResourceMetadataURL(%q) = %q, want %q", tc.resource, got, tc.want)
			}
		})
	}
}

func TestResourceFromMetadataURL(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		want    string
		wantErr error
		errHas  string
	}{
		{name: "root", url: "https://api.example.com/.well-known/oauth-protected-resource", want: "https://api.example.com"},
		{name: "path", url: "https://api.example.com/.well-known/oauth-protected-resource/v2/mcp", want: "https://api.example.com/v2/mcp"},
		{name: "trailing slash", url: "https://api.example.com/.well-known/oauth-protected-resource/v2/", want: "https://api.example.com/v2/"},
		{name: "query", url: "https://api.example.com/.well-known/oauth-protected-resource/v2?tenant=a", want: "https://api.example.com/v2?tenant=a"},
		{name: "port and http", url: "http://127.0.0.1:8080/.well-known/oauth-protected-resource/r", want: "http://127.0.0.1:8080/r"},
		{name: "no well-known segment", url: "https://api.example.com/v2/mcp", errHas: "does not start with /.well-known/oauth-protected-resource"},
		{name: "segment not at start", url: "https://api.example.com/v2/.well-known/oauth-protected-resource", errHas: "does not start with"},
		{name: "longer segment name", url: "https://api.example.com/.well-known/oauth-protected-resourcex", errHas: "does not start with"},
		{name: "server metadata URL", url: "https://api.example.com/.well-known/oauth-authorization-server", errHas: "does not start with"},
		{name: "fragment", url: "https://api.example.com/.well-known/oauth-protected-resource#x", errHas: "fragment"},
		{name: "other scheme", url: "ftp://api.example.com/.well-known/oauth-protected-resource", wantErr: discovery.ErrInsecureURL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := discovery.ResourceFromMetadataURL(tc.url)
			checkErr(t, err, tc.wantErr, tc.errHas)
			if got != tc.want {
				t.Errorf("ResourceFromMetadataURL(%q) = %q, want %q", tc.url, got, tc.want)
			}
		})
	}
}

func TestResourceMetadataURLRoundTrip(t *testing.T) {
	for _, r := range []string{
		"https://api.example.com",
		"https://api.example.com/v2/mcp",
		"https://api.example.com/v2/mcp/",
		"https://api.example.com:8443/a%2Fb?x=1&y=2",
	} {
		u, err := discovery.ResourceMetadataURL(r)
		if err != nil {
			t.Fatalf("ResourceMetadataURL(%q): %v", r, err)
		}
		back, err := discovery.ResourceFromMetadataURL(u)
		if err != nil {
			t.Fatalf("ResourceFromMetadataURL(%q): %v", u, err)
		}
		if back != r {
			t.Errorf("round trip of %q via %q gave %q", r, u, back)
		}
	}
}

func TestServerMetadataURLs(t *testing.T) {
	tests := []struct {
		name    string
		issuer  string
		want    []string
		wantErr error
		errHas  string
	}{
		{name: "root", issuer: "https://as.example.com", want: []string{
			"https://as.example.com/.well-known/oauth-authorization-server",
			"https://as.example.com/.well-known/openid-configuration",
		}},
		{name: "root with slash", issuer: "https://as.example.com/", want: []string{
			"https://as.example.com/.well-known/oauth-authorization-server",
			"https://as.example.com/.well-known/openid-configuration",
		}},
		{name: "path", issuer: "https://as.example.com/dex", want: []string{
			"https://as.example.com/.well-known/oauth-authorization-server/dex",
			"https://as.example.com/dex/.well-known/openid-configuration",
			"https://as.example.com/.well-known/openid-configuration/dex",
		}},
		{name: "path with trailing slash", issuer: "https://as.example.com/tenant/", want: []string{
			"https://as.example.com/.well-known/oauth-authorization-server/tenant",
			"https://as.example.com/tenant/.well-known/openid-configuration",
			"https://as.example.com/.well-known/openid-configuration/tenant",
		}},
		{name: "deep path and port", issuer: "https://as.example.com:8443/realms/a", want: []string{
			"https://as.example.com:8443/.well-known/oauth-authorization-server/realms/a",
			"https://as.example.com:8443/realms/a/.well-known/openid-configuration",
			"https://as.example.com:8443/.well-known/openid-configuration/realms/a",
		}},
		{name: "http derived, checked when fetched", issuer: "http://127.0.0.1:9000", want: []string{
			"http://127.0.0.1:9000/.well-known/oauth-authorization-server",
			"http://127.0.0.1:9000/.well-known/openid-configuration",
		}},
		{name: "query", issuer: "https://as.example.com/?a=b", errHas: "query"},
		{name: "empty query", issuer: "https://as.example.com/?", errHas: "query"},
		{name: "fragment", issuer: "https://as.example.com/#x", errHas: "fragment"},
		{name: "other scheme", issuer: "ftp://as.example.com", wantErr: discovery.ErrInsecureURL},
		{name: "relative", issuer: "as.example.com", errHas: "not absolute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := discovery.ServerMetadataURLs(tc.issuer)
			checkErr(t, err, tc.wantErr, tc.errHas)
			if !slices.Equal(got, tc.want) {
				t.Errorf("ServerMetadataURLs(%q) =\n%q\nwant\n%q", tc.issuer, got, tc.want)
			}
		})
	}
}

// checkErr fails t unless err matches: nil when neither wantErr nor errHas is
// set, otherwise wrapping wantErr and containing errHas, always prefixed with
// the package name.
func checkErr(t *testing.T, err, wantErr error, errHas string) {
	t.Helper()
	if wantErr == nil && errHas == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want one (%v %q)", wantErr, errHas)
	}
	if wantErr != nil && !errors.Is(err, wantErr) {
		t.Errorf("error %q does not wrap %q", err, wantErr)
	}
	if !strings.Contains(err.Error(), errHas) {
		t.Errorf("error %q does not contain %q", err, errHas)
	}
	if !strings.HasPrefix(err.Error(), "discovery: ") {
		t.Errorf("error %q is not prefixed with %q", err, "discovery: ")
	}
}
