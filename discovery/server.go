package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tokenguard/tokenguard/internal/fetch"
)

// ServerMetadata is an OAuth 2.0 Authorization Server Metadata document
// (RFC 8414 §2), or an OpenID Provider Configuration document, limited to
// the members a resource server uses.
type ServerMetadata struct {
	// Issuer is the authorization server's issuer identifier. It is required
	// and equals, byte for byte, the issuer the document was fetched for.
	Issuer string `json:"issuer"`
	// AuthorizationEndpoint is the URL of the authorization endpoint, empty
	// when absent.
	AuthorizationEndpoint string `json:"authorization_endpoint,omitempty"`
	// TokenEndpoint is the URL of the token endpoint, empty when absent.
	TokenEndpoint string `json:"token_endpoint,omitempty"`
	// JWKSURI is the URL of the server's JSON Web Key Set, empty when
	// absent.
	JWKSURI string `json:"jwks_uri,omitempty"`
	// RegistrationEndpoint is the URL of the dynamic client registration
	// endpoint (RFC 7591), empty when absent.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// IntrospectionEndpoint is the URL of the token introspection endpoint
	// (RFC 7662), empty when absent.
	IntrospectionEndpoint string `json:"introspection_endpoint,omitempty"`
	// RevocationEndpoint is the URL of the token revocation endpoint
	// (RFC 7009), empty when absent.
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	// ScopesSupported lists the scope values the server supports, nil when
	// absent.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// ResponseTypesSupported lists the OAuth response_type values the
	// server supports, nil when absent.
	ResponseTypesSupported []string `json:"response_types_supported,omitempty"`
	// GrantTypesSupported lists the grant types the server supports, nil
	// when absent (RFC 8414 then implies authorization_code and implicit).
	GrantTypesSupported []string `json:"grant_types_supported,omitempty"`
	// TokenEndpointAuthMethodsSupported lists the client authentication
	// methods of the token endpoint, nil when absent (RFC 8414 then implies
	// client_secret_basic).
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	// IntrospectionEndpointAuthMethodsSupported lists the client
	// authentication methods of the introspection endpoint, nil when absent.
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	// CodeChallengeMethodsSupported lists the PKCE code challenge methods,
	// nil when absent.
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported,omitempty"`
	// IDTokenSigningAlgValuesSupported lists the JWS algorithms of ID tokens
	// (OpenID Connect Discovery), nil when absent.
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported,omitempty"`
	// Extra holds every member not named above, as sent. It is nil when
	// there is none.
	Extra map[string]json.RawMessage `json:"-"`
	// URL is where the document was fetched from.
	URL string `json:"-"`
}

// FetchServer fetches the metadata of the authorization server identified
// by issuer, trying the URLs of ServerMetadataURLs in order. It moves on to
// the next URL only when one answers 404 Not Found or 410 Gone; any other
// failure is returned as is. When every URL answers 404 or 410 the error
// wraps ErrNotFound and names each URL tried.
//
// The first document fetched must name issuer exactly, byte for byte
// (https://host/dex and https://host/dex/ differ); otherwise the error wraps
// ErrIssuerMismatch and no further URL is tried. Every endpoint URL in the
// document must pass the Client's scheme rule.
func (c *Client) FetchServer(ctx context.Context, issuer string) (*ServerMetadata, error) {
	if c == nil {
		c = &Client{}
	}
	const doc = "authorization server metadata"
	candidates, err := c.serverURLs(issuer)
	if err != nil {
		return nil, err
	}
	var tried []string
	for _, u := range candidates {
		body, err := c.get(ctx, u)
		if err != nil {
			if isGone(err) {
				tried = append(tried, err.Error())
				continue
			}
			return nil, fmt.Errorf("discovery: %s for issuer %q: %w", doc, issuer, err)
		}
		return c.parseServer(doc, u, issuer, body)
	}
	return nil, fmt.Errorf("%w: no %s for issuer %q: tried %s", ErrNotFound, doc, issuer, strings.Join(tried, "; "))
}

// parseServer decodes and validates the document fetched from docURL.
func (c *Client) parseServer(doc, docURL, issuer string, body []byte) (*ServerMetadata, error) {
	md := &ServerMetadata{URL: docURL}
	var err error
	md.Extra, err = decodeObject(doc, docURL, body, []member{
		{"issuer", &md.Issuer},
		{"authorization_endpoint", &md.AuthorizationEndpoint},
		{"token_endpoint", &md.TokenEndpoint},
		{"jwks_uri", &md.JWKSURI},
		{"registration_endpoint", &md.RegistrationEndpoint},
		{"introspection_endpoint", &md.IntrospectionEndpoint},
		{"revocation_endpoint", &md.RevocationEndpoint},
		{"scopes_supported", &md.ScopesSupported},
		{"response_types_supported", &md.ResponseTypesSupported},
		{"grant_types_supported", &md.GrantTypesSupported},
		{"token_endpoint_auth_methods_supported", &md.TokenEndpointAuthMethodsSupported},
		{"introspection_endpoint_auth_methods_supported", &md.IntrospectionEndpointAuthMethodsSupported},
		{"code_challenge_methods_supported", &md.CodeChallengeMethodsSupported},
		{"id_token_signing_alg_values_supported", &md.IDTokenSigningAlgValuesSupported},
	})
	if err != nil {
		return nil, err
	}
	if md.Issuer == "" {
		return nil, fmt.Errorf("discovery: %s at %s: required member issuer is missing", doc, docURL)
	}
	if md.Issuer != issuer {
		return nil, fmt.Errorf("%w: %s at %s names issuer %q, want %q", ErrIssuerMismatch, doc, docURL, md.Issuer, issuer)
	}
	// The issuer equals the requested one, which was checked already; check
	// it again so this function stands on its own.
	if _, err := checkIssuerURL(md.Issuer); err != nil {
		return nil, fmt.Errorf("discovery: %s at %s: member issuer: %w", doc, docURL, err)
	}
	for _, f := range []struct{ name, value string }{
		{"issuer", md.Issuer},
		{"authorization_endpoint", md.AuthorizationEndpoint},
		{"token_endpoint", md.TokenEndpoint},
		{"jwks_uri", md.JWKSURI},
		{"registration_endpoint", md.RegistrationEndpoint},
		{"introspection_endpoint", md.IntrospectionEndpoint},
		{"revocation_endpoint", md.RevocationEndpoint},
	} {
		if f.value == "" {
			continue
		}
		if err := c.checkURL(doc, docURL, f.name, f.value); err != nil {
			return nil, err
		}
	}
	return md, nil
}

// CheckServer runs the checks FetchServer makes before it fetches anything
// (the issuer identifier's syntax, https), so that a caller can tell a
// configuration that cannot work from a server that is down.
func (c *Client) CheckServer(issuer string) error {
	if c == nil {
		c = &Client{}
	}
	_, err := c.serverURLs(issuer)
	return err
}

// serverURLs checks issuer and returns where its metadata may be.
func (c *Client) serverURLs(issuer string) ([]string, error) {
	candidates, err := ServerMetadataURLs(issuer)
	if err != nil {
		return nil, err
	}
	if _, err := fetch.CheckURL(issuer, c.InsecureAllowHTTP); err != nil {
		return nil, fmt.Errorf("discovery: issuer identifier: %w", err)
	}
	return candidates, nil
}
