// An oidc-provider (panva) authorization server for tokenguard's interop
// tests. The Go test starts it with `node server.mjs` and reads one JSON line
// from stdout, {"issuer": "http://127.0.0.1:<port>"}, once it listens.
//
// Environment:
//   OP_PORT      port to listen on, on 127.0.0.1; 0 or unset: an ephemeral one
//   OP_JWKS      the signing keys, a JWK Set with private RSA keys (required)
//   OP_SIGN_KID  kid of the key that signs JWT access tokens (default: the first)
//
// What it serves: client_credentials for confidential clients; resource
// indicators (RFC 8707), with JWT access tokens for two of the resources
// below, opaque ones for the third and when no resource is asked for;
// introspection (plain, or signed as RFC 9701 says), allowed only to the
// resource server's clients; revocation; DPoP (RFC 9449): a token request
// with a DPoP proof gets a token bound to the proof's key (cnf.jkt in the
// JWT and in the introspection answer, token_type DPoP), every proof must
// carry a nonce of this server (use_dpop_nonce and DPoP-Nonce first), and
// one client gets no token without a proof. Everything is in memory.
import * as crypto from 'node:crypto';
import * as http from 'node:http';

import { Provider, errors } from 'oidc-provider';

export const RESOURCE = 'https://api.tokenguard.test/orders';
export const OTHER_RESOURCE = 'https://other.tokenguard.test/';
export const OPAQUE_RESOURCE = 'https://opaque.tokenguard.test/';
const SCOPE = 'orders:read orders:write';

const jwks = JSON.parse(process.env.OP_JWKS ?? 'null');
if (!jwks || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
  console.error('server.mjs: OP_JWKS must be a JWK Set with at least one private key');
  process.exit(2);
}
const signKid = process.env.OP_SIGN_KID || jwks.keys[0].kid;
const port = Number(process.env.OP_PORT ?? 0);

const resourceServers = {
  [RESOURCE]: { audience: RESOURCE, scope: SCOPE, accessTokenFormat: 'jwt' },
  [OTHER_RESOURCE]: { audience: OTHER_RESOURCE, scope: SCOPE, accessTokenFormat: 'jwt' },
  // A resource whose tokens stay opaque: their introspection answers carry aud.
  [OPAQUE_RESOURCE]: { audience: OPAQUE_RESOURCE, scope: SCOPE, accessTokenFormat: 'opaque' },
};

const server = http.createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;

  const provider = new Provider(issuer, {
    jwks,
    clients: [
      {
        // The application: gets tokens and revokes its own.
        client_id: 'tokenguard-app',
        client_secret: 'app-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: SCOPE,
      },
      {
        // The same, but its tokens live one second (ttl.ClientCredentials).
        client_id: 'tokenguard-short',
        client_secret: 'short-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: SCOPE,
      },
      {
        // A DPoP client: every token it gets is bound to the key of the
        // proof it sends, and a token request without a proof is refused.
        client_id: 'tokenguard-dpop',
        client_secret: 'dpop-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: SCOPE,
        dpop_bound_access_tokens: true,
      },
      {
        // The resource server (tokenguard): introspects, gets no tokens.
        client_id: 'tokenguard-rs',
        client_secret: 'rs-secret',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        // The resource server again, asking for signed answers (RFC 9701).
        client_id: 'tokenguard-rs-jwt',
        client_secret: 'rs-jwt-secret',
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        introspection_signed_response_alg: 'RS256',
      },
    ],
    scopes: SCOPE.split(' '),
    cookies: { keys: ['tokenguard-interop-cookie-key'] },
    ttl: {
      ClientCredentials(_ctx, token, client) {
        if (client.clientId === 'tokenguard-short') return 1;
        return token.resourceServer?.accessTokenTTL || 600;
      },
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client) => client.clientId.startsWith('tokenguard-rs'),
      },
      jwtIntrospection: { enabled: true },
      revocation: { enabled: true },
      // On by default in oidc-provider 9; stated here with what the tests
      // rely on. Proofs sent to the token endpoint must carry one of this
      // server's nonces (stateless, under a key made at start), so a
      // client's first proof is refused with use_dpop_nonce.
      dPoP: {
        enabled: true,
        nonceSecret: crypto.randomBytes(32),
        requireNonce: () => true,
        allowReplay: false,
      },
      resourceIndicators: {
        enabled: true,
        // No resource parameter: no resource server, so an opaque token.
        defaultResource: async () => undefined,
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx, indicator) => {
          const rs = resourceServers[indicator];
          if (!rs) throw new errors.InvalidTarget();
          if (rs.accessTokenFormat !== 'jwt') return rs;
          return { ...rs, jwt: { sign: { alg: 'RS256', kid: signKid } } };
        },
      },
    },
  });

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, signKid })}\n`);
});

server.on('error', (err) => {
  console.error(`server.mjs: ${err.message}`);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
