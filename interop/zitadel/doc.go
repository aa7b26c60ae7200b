// Package zitadel holds tokenguard's interop tests against zitadel/oidc's
// OpenID provider (github.com/zitadel/oidc/v3/pkg/op). It has no API: the
// tests build an OP from op's public API with a minimal in-memory Storage
// (storage_test.go), serve it on 127.0.0.1, and run a tokenguard.Guard
// discovered from its metadata against the tokens it issues.
//
// What the OP does, and what the guard is configured with because of it:
//
//   - The issuer is "http://127.0.0.1:<port>/", with ZITADEL's trailing
//     "/"; Config.Issuer must carry it (issuers are compared exactly).
//     op serves OpenID discovery only; tokenguard falls back to it.
//   - ZITADEL's aud is the client id plus each project asked for with the
//     scope urn:zitadel:iam:org:project:id:<project>:aud, so
//     Config.Audience is the resource server's project id.
//   - JWT access tokens: RS256, typ "JWT" (Config.RequireATJWTType refuses
//     them), claims iss sub aud exp iat nbf client_id jti and no scope, so
//     Principal.Scopes is empty and scope requirements answer 403.
//   - Opaque access tokens are five-part compact JWEs (A256GCMKW/A256GCM,
//     kid = op.Config.CryptoKeyId) of "tokenID:subject"; tokenguard
//     introspects them.
//   - Introspection takes client_secret_basic (or a private_key_jwt
//     assertion, which tokenguard does not send), never client_secret_post;
//     a refused caller gets 401 text/plain, which tokenguard answers with 503.
//   - Revocation (RFC 7009) shows through introspection only: opaque tokens
//     once the cached answer expires (Introspection.MaxTTL), JWTs only with
//     Introspection.JWTs = IntrospectJWTAlways.
//   - The client_credentials grant yields no refresh token; the
//     authorization code flow with offline_access does.
//
// Run with: go test -race ./... (a few seconds; everything on loopback).
package zitadel
