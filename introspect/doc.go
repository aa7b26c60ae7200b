// Package introspect is an OAuth 2.0 Token Introspection client (RFC 7662):
// it asks the authorization server whether an opaque token is active and
// validates the answer.
//
// The client authenticates to the endpoint with client_secret_basic,
// client_secret_post, a bearer token (static, or obtained with the
// client_credentials grant and refreshed before it expires) or not at all.
// Optionally it asks for signed JWT responses (RFC 9701) and verifies them
// against the authorization server's key set.
//
// Every call is bounded in time and size and never cached here: the caller
// composes a Client with a cache. The outcome of Introspect is one of three:
//
//   - a *Result: Active true (the answer passed validation) or Active false
//     (the server says the token is not active; this is not an error);
//   - a *TokenError (errors.Is ErrTokenRejected): the server says active but
//     the answer shows the token must not be accepted here (expired, not yet
//     valid, untrusted issuer, other audience, a refresh token). Answer 401
//     invalid_token;
//   - an *UpstreamError (errors.Is ErrUpstream): the token's fate is unknown
//     (network failure, timeout, rate limit, server error, rejected client
//     credentials, malformed answer). Answer 503 with Retry-After; never
//     invalid_token, and never cache it.
//
// The token is never written into an error or a log line.
package introspect
