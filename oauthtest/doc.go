// Package oauthtest provides an in-process OAuth 2.0 authorization server for
// tests and examples, in the manner of net/http/httptest.
//
// A [Server] listens on the loopback interface, publishes its signing keys as
// a JWK Set, serves the discovery documents a resource server reads at start-up
// (RFC 9728 protected-resource metadata, RFC 8414 authorization-server metadata
// and OpenID discovery), issues JWT access tokens (RFC 9068) through the
// client-credentials grant and through [Server.Mint], issues opaque tokens
// through [Server.MintOpaque] (and the grant, with Options.OpaqueTokens),
// answers token introspection (RFC 7662) for both kinds, revokes tokens
// ([Server.Revoke], RFC 7009) and registers clients dynamically (RFC 7591).
// Tests can rotate and retire keys, forge malformed tokens, count requests
// per endpoint, see how each introspection call authenticated
// ([Server.IntrospectionCalls]), rate-limit introspection as the seed API
// does and inject faults such as error statuses, garbage bodies and slow
// responses.
//
// The endpoint layout follows the seed API: discovery documents at the root,
// everything else under a prefix ("/oauth" by default):
//
//	/.well-known/oauth-protected-resource[/resource path]   resource_metadata
//	/.well-known/oauth-authorization-server[/issuer path]   server_metadata
//	[issuer path]/.well-known/openid-configuration          openid_configuration
//	{Prefix}/jwks                                           jwks
//	{Prefix}/token                                          token
//	{Prefix}/register                                       register
//	{Prefix}/introspect                                     introspect
//	{Prefix}/revoke                                         revoke
//	{Prefix}/authorize                                      authorize (501)
//
// The names on the right are the endpoint names used by [Server.Requests] and
// [Server.SetFault].
//
// For tests of handlers that a [tokenguard.Guard] protects, [Server.GuardConfig]
// returns a Config that trusts the server (with the plain-HTTP opt-in, or
// the client that trusts its certificate after StartTLS),
// [Server.BearerClient] an *http.Client that sends a token with every
// request, and [Server.Principal] and [Server.WithPrincipal] a genuine
// Principal with chosen claims, authenticated by the guard, which its
// requirements (Require, RequireScopes, Check) honour:
//
//	g, err := tokenguard.New(ctx, as.GuardConfig())
//	...
//	r := as.WithPrincipal(httptest.NewRequest("GET", "/orders", nil), g, oauthtest.Claims{"scope": "read"})
//	g.RequireScopes("read")(handler).ServeHTTP(w, r)
//
// Only these helpers use the tokenguard package. The server itself
// (minting, signing, serving) is built from the standard library alone, so
// a token minted here is an independent check of any JOSE library that
// verifies it, tokenguard's included. A Server holds no global state and is
// safe for concurrent use. Like httptest, it panics on
// set-up errors and on misuse (an unknown key id or endpoint name), which in a
// test is a bug to be fixed rather than a condition to handle.
//
// oauthtest is for tests and examples only and is never needed at run time.
package oauthtest
