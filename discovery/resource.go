package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/tokenguard/tokenguard/internal/fetch"
)

// ResourceMetadata is an OAuth 2.0 Protected Resource Metadata document
// (RFC 9728 §2).
type ResourceMetadata struct {
	// Resource is the protected resource's resource identifier. It is
	// required and equals the identifier the document was fetched for.
	Resource string `json:"resource"`
	// AuthorizationServers lists the issuer identifiers of the authorization
	// servers that can issue tokens for the resource. FetchResource requires
	// at least one.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// JWKSURI is the URL of the resource's own JSON Web Key Set, empty when
	// absent.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// ScopesSupported lists the scope values used to request access to the
	// resource, nil when absent.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported lists how bearer tokens may be sent: "header",
	// "body", "query". Nil when absent.
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	// ResourceSigningAlgValuesSupported lists the JWS algorithms the
	// resource signs its responses with, nil when absent.
	ResourceSigningAlgValuesSupported []string `json:"resource_signing_alg_values_supported,omitempty"`
	// ResourceName is a human-readable name of the resource, empty when
	// absent.
	ResourceName string `json:"resource_name,omitempty"`
	// ResourceDocumentation is the URL of human-readable documentation for
	// developers, empty when absent.
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
	// Extra holds every member not named above, as sent. It is nil when
	// there is none.
	Extra map[string]json.RawMessage `json:"-"`
	// URL is where the document was fetched from.
	URL string `json:"-"`
}

// FetchResource fetches the protected resource metadata document at
// metadataURL and checks that it describes resource (RFC 9728 §3.3): its
// resource member must equal resource exactly, except that an empty path
// and "/" are the same. An empty resource means the one derived from
// metadataURL by ResourceFromMetadataURL; an empty metadataURL means the one
// derived from resource by ResourceMetadataURL.
//
// The document must be a single JSON object. It must list at least one
// authorization server, and every URL in it must pass the Client's scheme
// rule. A 404 or 410 answer yields an error wrapping ErrNotFound.
func (c *Client) FetchResource(ctx context.Context, metadataURL, resource string) (*ResourceMetadata, error) {
	if c == nil {
		c = &Client{}
	}
	const doc = "resource metadata"
	metadataURL, resource, err := c.resourceURLs(metadataURL, resource)
	if err != nil {
		return nil, err
	}

	body, err := c.get(ctx, metadataURL)
	if err != nil {
		if isGone(err) {
			return nil, fmt.Errorf("%w: %s: %w", ErrNotFound, doc, err)
		}
		return nil, fmt.Errorf("discovery: %s: %w", doc, err)
	}
	md := &ResourceMetadata{URL: metadataURL}
	md.Extra, err = decodeObject(doc, metadataURL, body, []member{
		{"resource", &md.Resource},
		{"authorization_servers", &md.AuthorizationServers},
		{"jwks_uri", &md.JWKSURI},
		{"scopes_supported", &md.ScopesSupported},
		{"bearer_methods_supported", &md.BearerMethodsSupported},
		{"resource_signing_alg_values_supported", &md.ResourceSigningAlgValuesSupported},
		{"resource_name", &md.ResourceName},
		{"resource_documentation", &md.ResourceDocumentation},
	})
	if err != nil {
		return nil, err
	}

	if md.Resource == "" {
		return nil, fmt.Errorf("discovery: %s at %s: required member resource is missing", doc, metadataURL)
	}
	if !sameResource(md.Resource, resource) {
		return nil, fmt.Errorf("%w: %s at %s names resource %q, want %q", ErrResourceMismatch, doc, metadataURL, md.Resource, resource)
	}
	if len(md.AuthorizationServers) == 0 {
		return nil, fmt.Errorf("discovery: %s at %s: authorization_servers is missing or empty; at least one authorization server is needed to know whom to trust (or configure the issuer directly)", doc, metadataURL)
	}
	for i, as := range md.AuthorizationServers {
		if _, err := checkIssuerURL(as); err != nil {
			return nil, fmt.Errorf("discovery: %s at %s: authorization_servers[%d]: %w", doc, metadataURL, i, err)
		}
		if err := c.checkURL(doc, metadataURL, fmt.Sprintf("authorization_servers[%d]", i), as); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct{ name, value string }{
		{"jwks_uri", md.JWKSURI},
		{"resource_documentation", md.ResourceDocumentation},
	} {
		if f.value == "" {
			continue
		}
		if err := c.checkURL(doc, metadataURL, f.name, f.value); err != nil {
			return nil, err
		}
	}
	return md, nil
}

// isGone reports whether err is a 404 Not Found or 410 Gone answer, the only
// answers that mean "no document here" rather than a failure.
func isGone(err error) bool {
	var se *fetch.StatusError
	return errors.As(err, &se) && (se.StatusCode == http.StatusNotFound || se.StatusCode == http.StatusGone)
}

// CheckResource runs the checks FetchResource makes before it fetches
// anything (URL syntax, https, the well-known path), so that a caller can
// tell a configuration that cannot work from a server that is down.
func (c *Client) CheckResource(metadataURL, resource string) error {
	if c == nil {
		c = &Client{}
	}
	_, _, err := c.resourceURLs(metadataURL, resource)
	return err
}

// resourceURLs completes the metadata URL and resource pair (each may be
// derived from the other) and checks both.
func (c *Client) resourceURLs(metadataURL, resource string) (string, string, error) {
	switch {
	case metadataURL == "" && resource == "":
		return "", "", errors.New("discovery: fetch resource metadata: neither a metadata URL nor a resource identifier given")
	case metadataURL == "":
		u, err := ResourceMetadataURL(resource)
		if err != nil {
			return "", "", err
		}
		metadataURL = u
	case resource == "":
		r, err := ResourceFromMetadataURL(metadataURL)
		if err != nil {
			return "", "", fmt.Errorf("%w (pass the resource identifier)", err)
		}
		resource = r
	}
	if _, err := fetch.CheckURL(metadataURL, c.InsecureAllowHTTP); err != nil {
		return "", "", fmt.Errorf("discovery: resource metadata URL: %w", err)
	}
	if _, err := fetch.CheckURL(resource, c.InsecureAllowHTTP); err != nil {
		return "", "", fmt.Errorf("discovery: resource identifier: %w", err)
	}
	return metadataURL, resource, nil
}
