// Package discovery fetches and validates the metadata documents that tell a
// protected resource which authorization servers to trust and where their
// keys and endpoints are: OAuth 2.0 Protected Resource Metadata (RFC 9728)
// and OAuth 2.0 Authorization Server Metadata (RFC 8414), falling back to
// OpenID Connect Discovery.
//
// Every fetch is bounded in time and size, accepts only HTTPS unless the
// caller opts in to plain HTTP, and every document is checked against the
// identifier used to find it: a resource document must name the resource it
// was fetched for, and an authorization server document must name the issuer
// it was fetched for, byte for byte. URLs found inside documents are held to
// the same scheme rule as the URLs fetched.
//
// The package knows nothing about requests or tokens; it only yields the
// documents.
package discovery
