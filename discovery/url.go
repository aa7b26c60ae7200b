package discovery

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/tokenguard/tokenguard/internal/fetch"
)

const (
	resourceWellKnown = "/.well-known/oauth-protected-resource"
	serverWellKnown   = "/.well-known/oauth-authorization-server"
	openIDWellKnown   = "/.well-known/openid-configuration"
)

// ResourceMetadataURL returns the URL of the protected resource metadata
// document for the resource identifier resource (RFC 9728 §3.1): the
// well-known path is inserted between the host and the path, and a query is
// kept after the path. A resource whose path is empty or "/" has its
// document at the well-known path itself:
//
//	https://api.example.com/v2/mcp -> https://api.example.com/.well-known/oauth-protected-resource/v2/mcp
//	https://api.example.com/       -> https://api.example.com/.well-known/oauth-protected-resource
//
// The resource must be an absolute http or https URL without fragment or
// user info. Whether plain http may be fetched is decided by the Client.
func ResourceMetadataURL(resource string) (string, error) {
	u, err := fetch.CheckURL(resource, true)
	if err != nil {
		return "", fmt.Errorf("discovery: resource identifier: %w", err)
	}
	p := u.EscapedPath()
	if p == "/" {
		p = ""
	}
	return u.Scheme + "://" + u.Host + resourceWellKnown + p + query(u), nil
}

// ResourceFromMetadataURL is the inverse of ResourceMetadataURL: it removes
// the well-known segment from a protected resource metadata URL and returns
// the resource identifier the document must name. A document at the
// well-known path itself belongs to the resource with an empty path
// (https://api.example.com). It is an error if the path does not start with
// /.well-known/oauth-protected-resource.
func ResourceFromMetadataURL(metadataURL string) (string, error) {
	u, err := fetch.CheckURL(metadataURL, true)
	if err != nil {
		return "", fmt.Errorf("discovery: resource metadata URL: %w", err)
	}
	p := u.EscapedPath()
	rest, ok := strings.CutPrefix(p, resourceWellKnown)
	if !ok || (rest != "" && rest[0] != '/') {
		return "", fmt.Errorf("discovery: resource metadata URL %q: path does not start with %s", metadataURL, resourceWellKnown)
	}
	return u.Scheme + "://" + u.Host + rest + query(u), nil
}

// ServerMetadataURLs returns the URLs where the metadata of the
// authorization server identified by issuer may be found, in the order
// Client.FetchServer tries them:
//
//  1. RFC 8414 §3.1: https://host/.well-known/oauth-authorization-server{path}
//  2. OpenID Connect Discovery 1.0 §4: {issuer}/.well-known/openid-configuration
//  3. only when the issuer has a path: https://host/.well-known/openid-configuration{path}
//
// A terminating "/" of the issuer's path is removed before either form is
// built, so https://host/ and https://host yield the same URLs. The issuer
// must be an absolute http or https URL without query, fragment or user
// info (RFC 8414 §2).
func ServerMetadataURLs(issuer string) ([]string, error) {
	u, err := checkIssuerURL(issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: issuer identifier: %w", err)
	}
	p := strings.TrimRight(u.EscapedPath(), "/")
	origin := u.Scheme + "://" + u.Host
	candidates := []string{
		origin + serverWellKnown + p,
		strings.TrimRight(issuer, "/") + openIDWellKnown,
	}
	if p != "" {
		candidates = append(candidates, origin+openIDWellKnown+p)
	}
	out := candidates[:0]
	seen := make(map[string]bool, len(candidates))
	for _, c := range candidates {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out, nil
}

// query returns u's query with its leading "?", or "" when it has none.
func query(u *url.URL) string {
	if u.RawQuery == "" && !u.ForceQuery {
		return ""
	}
	return "?" + u.RawQuery
}

// sameResource reports whether two resource identifiers are equal, treating
// an empty path and "/" as the same (https://h == https://h/). Nothing else
// is normalized.
func sameResource(a, b string) bool {
	return a == b || withRootSlash(a) == withRootSlash(b)
}

// withRootSlash returns s with "/" inserted after the authority when its
// path is empty.
func withRootSlash(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	start := i + len("://")
	j := strings.IndexAny(s[start:], "/?#")
	if j < 0 {
		return s + "/"
	}
	if s[start+j] == '/' {
		return s
	}
	return s[:start+j] + "/" + s[start+j:]
}
