// Package fositeinterop holds tests only: they compose an OAuth 2.0
// authorization server from github.com/ory/fosite's public API (in-memory
// storage, the client-credentials and password grants, refresh tokens,
// fosite's introspection and revocation handlers), serve it on 127.0.0.1
// with RFC 8414 metadata and a JWK Set written here (fosite serves neither),
// and run tokenguard against it with fosite's JWT and HMAC (opaque) access
// token strategies.
//
// Run: go test -race ./... (from this directory). Each test logs the token
// shapes fosite issued (JWT header and claims, introspection answers) with
// -v.
package fositeinterop
