package discovery_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tokenguard/tokenguard/discovery"
)

func ExampleResourceMetadataURL() {
	for _, resource := range []string{
		"https://api.example.com",
		"https://api.example.com/v2/mcp",
	} {
		u, err := discovery.ResourceMetadataURL(resource)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(u)
	}
	_, err := discovery.ResourceMetadataURL("https://api.example.com/v2#section")
	fmt.Println(err != nil)
	// Output:
	// https://api.example.com/.well-known/oauth-protected-resource
	// https://api.example.com/.well-known/oauth-protected-resource/v2/mcp
	// true
}

func ExampleServerMetadataURLs() {
	urls, err := discovery.ServerMetadataURLs("https://auth.example.com/dex")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, u := range urls {
		fmt.Println(u)
	}
	// Output:
	// https://auth.example.com/.well-known/oauth-authorization-server/dex
	// https://auth.example.com/dex/.well-known/openid-configuration
	// https://auth.example.com/.well-known/openid-configuration/dex
}

// The usual start-up: read the resource's metadata, then the metadata of
// each authorization server it names.
func ExampleClient_FetchServer() {
	// A stand-in for a real deployment, serving both documents at the root.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := "http://" + r.Host
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-protected-resource":
			fmt.Fprintf(w, `{"resource":%q,"authorization_servers":[%q]}`, base, base)
		case "/.well-known/oauth-authorization-server":
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":"%s/oauth/jwks","introspection_endpoint":"%s/oauth/introspect"}`, base, base, base)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	// The test server speaks plain HTTP; never set this in production.
	c := &discovery.Client{InsecureAllowHTTP: true}
	ctx := context.Background()
	rm, err := c.FetchResource(ctx, "", srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, issuer := range rm.AuthorizationServers {
		sm, err := c.FetchServer(ctx, issuer)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(strings.TrimPrefix(sm.JWKSURI, srv.URL))
		fmt.Println(strings.TrimPrefix(sm.IntrospectionEndpoint, srv.URL))
	}
	// Output:
	// /oauth/jwks
	// /oauth/introspect
}
