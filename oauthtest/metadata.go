package oauthtest

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

const (
	resourceMetadataPrefix = "/.well-known/oauth-protected-resource"
	serverMetadataPrefix   = "/.well-known/oauth-authorization-server"
	openIDConfigSuffix     = "/.well-known/openid-configuration"
)

// resourcePath is the (decoded) path RFC 9728 §3.1 inserts after the
// well-known prefix: the resource's path, except that a path of just "/"
// (a terminating slash after the host) is dropped.
func resourcePath(u *url.URL) string {
	if u.Path == "/" {
		return ""
	}
	return u.Path
}

// serverMetadataPath applies RFC 8414 §3.1: a terminating "/" of the issuer is
// removed and its path is appended to the well-known prefix.
func serverMetadataPath(issuerPath string) string {
	return serverMetadataPrefix + strings.TrimSuffix(issuerPath, "/")
}

// openIDConfigurationPath is OpenID Connect Discovery §4: the issuer without
// a trailing slash, followed by the well-known suffix.
func openIDConfigurationPath(issuerPath string) string {
	return strings.TrimSuffix(issuerPath, "/") + openIDConfigSuffix
}

func (s *Server) resourceMetadataHandler(resource string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"resource":                 resource,
			"authorization_servers":    []string{s.Issuer},
			"scopes_supported":         s.scopesSupported(),
			"bearer_methods_supported": []string{"header"},
		})
	}
}

func (s *Server) serveServerMetadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                 s.Issuer,
		"authorization_endpoint": s.AuthorizationURL(),
		"token_endpoint":         s.TokenURL(),
		"jwks_uri":               s.JWKSURL(),
		"introspection_endpoint": s.IntrospectionURL(),
		"introspection_endpoint_auth_methods_supported": s.introspectionAuthMethods(),
		"revocation_endpoint":                           s.RevocationURL(),
		"revocation_endpoint_auth_methods_supported":    []string{"none", "client_secret_basic", "client_secret_post"},
		"registration_endpoint":                         s.RegistrationURL(),
		"scopes_supported":                              s.scopesSupported(),
		"response_types_supported":                      []string{"code"},
		"grant_types_supported":                         []string{"client_credentials"},
		"token_endpoint_auth_methods_supported":         []string{"none", "client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":              []string{"S256"},
	})
}

// scopesSupported is Options.Scopes, or else the sorted union of the scopes
// of the registered clients. It is never nil, so it encodes as [].
func (s *Server) scopesSupported() []string {
	if s.opts.Scopes != nil {
		return s.opts.Scopes
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	scopes := []string{}
	for _, c := range s.clients {
		scopes = append(scopes, c.scopes...)
	}
	slices.Sort(scopes)
	return slices.Compact(scopes)
}
