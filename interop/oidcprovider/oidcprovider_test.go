// Package oidcprovider_test runs tokenguard against panva's oidc-provider
// (npm, started with the machine's Node.js from server.mjs), an
// authorization server nobody on this team wrote.
//
// Pinned in package-lock.json: oidc-provider 9.13.3, which on Node.js 20
// prints "Unsupported runtime. Use Node.js v22.x LTS" and works. What it does
// that a resource server must know, as these tests record it:
//   - client_credentials tokens are JWTs (typ at+jwt, RS256, sub = client_id)
//     only when the client sends a resource indicator (RFC 8707) for a
//     resource whose accessTokenFormat is "jwt"; without one they are opaque
//     (43 characters of base64url) and carry no aud;
//   - its introspection endpoint answers 400 unsupported_token_type for any
//     JWT-shaped token, and so does its revocation endpoint: JWT access tokens
//     cannot be revoked, and a guard that introspects JWTs
//     (IntrospectJWTAlways) rejects every one of them;
//   - client-credentials introspection answers carry no sub: Subject is ""
//     unless the issuer's TokenShape.ClientAsSubject is set;
//   - it serves both /.well-known/openid-configuration and
//     /.well-known/oauth-authorization-server, without
//     introspection_endpoint_auth_methods_supported (tokenguard then uses
//     client_secret_basic, which the resource server's client is registered
//     with); signed answers (RFC 9701) need features.jwtIntrospection and a
//     client with introspection_signed_response_alg, and then verify.
//
// Set TOKENGUARD_INTEROP_REQUIRED=1 to make a missing node or node_modules
// fail the tests instead of skipping them.
package oidcprovider_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
)

func TestOIDCProvider(t *testing.T) {
	t.Parallel()
	node := needNode(t)
	p := startProvider(t, node, "0", newKey(t, "k1"))
	c := newCounter()
	g := newGuard(t, p, c, nil)
	if got := g.ResourceMetadataURL(); got != resourceMetadata {
		t.Fatalf("ResourceMetadataURL %q, want %q", got, resourceMetadata)
	}
	if got := g.Issuers(); !slices.Equal(got, []string{p.issuer}) {
		t.Fatalf("Issuers %q, want [%s]", got, p.issuer)
	}
	t.Logf("discovery: %d GET /.well-known/oauth-authorization-server, %d GET /.well-known/openid-configuration, %d GET /jwks",
		c.get("/.well-known/oauth-authorization-server"), c.get("/.well-known/openid-configuration"), c.get("/jwks"))

	t.Run("no token", func(t *testing.T) {
		call(t, g, "", http.StatusUnauthorized, wantChallenge("", ""))
	})

	t.Run("JWT access token for the resource", func(t *testing.T) {
		tok := p.token(t, appID, appSecret, resource, "orders:read")
		h, cl := shape(t, tok)
		logJSON(t, "JWT header", h)
		logJSON(t, "JWT claims", cl)
		if h["typ"] != "at+jwt" || h["alg"] != "RS256" || h["kid"] != "k1" {
			t.Errorf("header %v: want typ at+jwt, alg RS256, kid k1", h)
		}
		pr := call(t, g, tok, http.StatusOK, "")
		if pr == nil {
			return
		}
		logJSON(t, "Principal", pr)
		exp := time.Unix(int64(cl["exp"].(float64)), 0)
		iat := time.Unix(int64(cl["iat"].(float64)), 0)
		if pr.Kind != tokenguard.KindJWT || pr.Subject != appID || pr.SubjectIsClient || pr.ClientID != appID ||
			pr.Issuer != p.issuer || !slices.Equal(pr.Audience, []string{resource}) ||
			!slices.Equal(pr.Scopes, []string{"orders:read"}) || !pr.Expiry.Equal(exp) || !pr.IssuedAt.Equal(iat) ||
			pr.TokenID == "" || pr.TokenID != cl["jti"] {
			t.Errorf("Principal %+v does not match claims %v", pr, cl)
		}
		if d := exp.Sub(iat); d != 10*time.Minute {
			t.Errorf("lifetime %v, want oidc-provider's default 10m for client credentials", d)
		}

		// The scope check on the same token: 403 naming what is missing.
		serve(t, g.RequireScopes("orders:read"), tok, http.StatusOK, "")
		serve(t, g.RequireScopes("orders:write"), tok, http.StatusForbidden,
			wantChallenge("insufficient_scope", "token lacks a required scope", "orders:write"))
	})

	t.Run("opaque token through introspection", func(t *testing.T) {
		tok := p.token(t, appID, appSecret, "", "orders:read orders:write")
		t.Logf("opaque token: %d characters, base64url: %v", len(tok), isBase64URL(tok))
		if strings.Count(tok, ".") != 0 || !isBase64URL(tok) {
			t.Errorf("opaque token %d characters, not plain base64url", len(tok))
		}
		status, body := p.introspect(t, tok)
		t.Logf("introspection answer (direct): %d %s", status, body)

		before := c.get("/token/introspection")
		pr := call(t, g, tok, http.StatusOK, "")
		if pr == nil {
			return
		}
		logJSON(t, "Principal", pr)
		if pr.Kind != tokenguard.KindOpaque || pr.ClientID != appID || pr.Issuer != p.issuer ||
			!slices.Equal(pr.Scopes, []string{"orders:read", "orders:write"}) || len(pr.Audience) != 0 ||
			pr.Expiry.IsZero() || pr.IssuedAt.IsZero() {
			t.Errorf("Principal %+v", pr)
		}
		// No sub in a client-credentials answer: Subject is empty by default.
		if pr.Subject != "" || pr.SubjectIsClient {
			t.Errorf("Subject %q SubjectIsClient %v, want \"\" false (no sub in the answer)", pr.Subject, pr.SubjectIsClient)
		}
		call(t, g, tok, http.StatusOK, "")
		if n := c.get("/token/introspection") - before; n != 1 {
			t.Errorf("%d introspection calls for two requests, want 1 (cached)", n)
		}
		serve(t, g.RequireScopes("orders:write"), tok, http.StatusOK, "")
	})

	t.Run("opaque token, ClientAsSubject", func(t *testing.T) {
		g := newGuard(t, p, newCounter(), func(cfg *tokenguard.Config) {
			cfg.Issuers = []tokenguard.TrustedIssuer{{Issuer: p.issuer, Shape: tokenguard.TokenShape{ClientAsSubject: true}}}
		})
		pr := call(t, g, p.token(t, appID, appSecret, "", "orders:read"), http.StatusOK, "")
		if pr != nil && (pr.Subject != appID || !pr.SubjectIsClient) {
			t.Errorf("Subject %q SubjectIsClient %v, want %q true", pr.Subject, pr.SubjectIsClient, appID)
		}
		// A JWT has sub (= client_id) itself: not marked as filled in.
		pr = call(t, g, p.token(t, appID, appSecret, resource, "orders:read"), http.StatusOK, "")
		if pr != nil && (pr.Subject != appID || pr.SubjectIsClient) {
			t.Errorf("JWT: Subject %q SubjectIsClient %v, want %q false", pr.Subject, pr.SubjectIsClient, appID)
		}
	})

	t.Run("revoked opaque token", func(t *testing.T) {
		tok := p.token(t, appID, appSecret, "", "orders:read")
		if status, body := p.revoke(t, tok); status != http.StatusOK {
			t.Fatalf("revocation: %d %s", status, body)
		}
		_, body := p.introspect(t, tok)
		t.Logf("introspection answer after revocation (direct): %s", body)
		call(t, g, tok, http.StatusUnauthorized, wantChallenge("invalid_token", "token is not active"))
	})

	t.Run("opaque token revoked after use", func(t *testing.T) {
		// An accepted answer is cached up to MaxTTL (capped by exp): the
		// revocation shows once it runs out.
		g := newGuard(t, p, newCounter(), func(cfg *tokenguard.Config) { cfg.Introspection.MaxTTL = time.Second })
		tok := p.token(t, appID, appSecret, "", "orders:read")
		call(t, g, tok, http.StatusOK, "")
		if status, body := p.revoke(t, tok); status != http.StatusOK {
			t.Fatalf("revocation: %d %s", status, body)
		}
		call(t, g, tok, http.StatusOK, "") // the cached answer
		time.Sleep(1100 * time.Millisecond)
		call(t, g, tok, http.StatusUnauthorized, wantChallenge("invalid_token", "token is not active"))
	})

	t.Run("JWT cannot be revoked", func(t *testing.T) {
		tok := p.token(t, appID, appSecret, resource, "orders:read")
		status, body := p.revoke(t, tok)
		t.Logf("revoking a JWT access token: %d %s", status, body)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"unsupported_token_type"`) {
			t.Errorf("revocation of a JWT: %d %s, want 400 unsupported_token_type", status, body)
		}
		call(t, g, tok, http.StatusOK, "") // validated locally, still good
	})

	t.Run("expired", func(t *testing.T) {
		jwt := p.token(t, shortID, shortSecret, resource, "orders:read")
		opaque := p.token(t, shortID, shortSecret, "", "orders:read")
		_, cl := shape(t, jwt)
		exp := time.Unix(int64(cl["exp"].(float64)), 0)
		t.Logf("short-lived JWT: iat %v exp %v", cl["iat"], cl["exp"])
		time.Sleep(time.Until(exp.Add(1100 * time.Millisecond)))

		strict := newGuard(t, p, newCounter(), func(cfg *tokenguard.Config) { cfg.Leeway = -1 })
		call(t, strict, jwt, http.StatusUnauthorized, wantChallenge("invalid_token", "token expired"))
		call(t, strict, opaque, http.StatusUnauthorized, wantChallenge("invalid_token", "token is not active"))
		// The default 30 s leeway still accepts the JWT; the server itself
		// says the opaque one is no longer active.
		call(t, g, jwt, http.StatusOK, "")
		call(t, g, opaque, http.StatusUnauthorized, wantChallenge("invalid_token", "token is not active"))
	})

	t.Run("other audience", func(t *testing.T) {
		tok := p.token(t, appID, appSecret, otherResource, "orders:read")
		_, cl := shape(t, tok)
		if cl["aud"] != otherResource {
			t.Fatalf("aud %v, want %s", cl["aud"], otherResource)
		}
		before := c.get("/token/introspection")
		call(t, g, tok, http.StatusUnauthorized, wantChallenge("invalid_token", "token not meant for this resource"))
		if n := c.get("/token/introspection") - before; n != 0 {
			t.Errorf("%d introspection calls, want 0", n)
		}
	})

	t.Run("opaque token for another resource", func(t *testing.T) {
		// Opaque tokens asked for without a resource carry no aud, so
		// their audience is not checked (above); one asked for with a
		// resource whose format is opaque has an aud, and it is.
		tok := p.token(t, appID, appSecret, opaqueResource, "orders:read")
		_, body := p.introspect(t, tok)
		t.Logf("introspection answer, opaque token for %s (direct): %s", opaqueResource, body)
		call(t, g, tok, http.StatusUnauthorized, wantChallenge("invalid_token", "token not meant for this resource"))

		mine := newGuard(t, p, newCounter(), func(cfg *tokenguard.Config) {
			cfg.Issuers = []tokenguard.TrustedIssuer{{Issuer: p.issuer, Audiences: []string{resource, opaqueResource}}}
		})
		pr := call(t, mine, tok, http.StatusOK, "")
		if pr != nil && (pr.Kind != tokenguard.KindOpaque || !slices.Equal(pr.Audience, []string{opaqueResource})) {
			t.Errorf("Principal %+v, want opaque with aud [%s]", pr, opaqueResource)
		}
	})

	t.Run("no aud: accepted by default, refused with RequireAudience", func(t *testing.T) {
		// An opaque token asked for without any resource indicator was
		// never meant for this resource, yet its answer has no aud, which
		// RFC 7662 allows: accepted by default, refused with
		// RequireAudience. (On the server side, a defaultResource that
		// always names a resource avoids such tokens.)
		tok := p.token(t, appID, appSecret, "", "orders:read")
		pr := call(t, g, tok, http.StatusOK, "")
		if pr != nil && len(pr.Audience) != 0 {
			t.Errorf("Audience %q, want none", pr.Audience)
		}
		strict := newGuard(t, p, newCounter(), func(cfg *tokenguard.Config) { cfg.Introspection.RequireAudience = true })
		call(t, strict, tok, http.StatusUnauthorized, wantChallenge("invalid_token", "token not meant for this resource"))
	})

	t.Run("unknown resource refused by the server", func(t *testing.T) {
		status, body := p.post(t, "/token", appID, appSecret, map[string][]string{
			"grant_type": {"client_credentials"}, "resource": {"https://unknown.tokenguard.test/"}})
		t.Logf("token for an unknown resource: %d %s", status, body)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"invalid_target"`) {
			t.Errorf("%d %s, want 400 invalid_target", status, body)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		jwt := p.token(t, appID, appSecret, resource, "orders:read")
		opaque := p.token(t, appID, appSecret, "", "orders:read")
		before := c.get("/token/introspection")
		// The payload re-encoded with a scope it was not granted.
		parts := strings.Split(jwt, ".")
		_, cl := shape(t, jwt)
		cl["scope"] = "orders:read orders:write"
		parts[1] = b64(mustJSON(t, cl))
		call(t, g, strings.Join(parts, "."), http.StatusUnauthorized, wantChallenge("invalid_token", "invalid signature"))
		// One character of the signature changed.
		call(t, g, tamper(jwt, 2), http.StatusUnauthorized, wantChallenge("invalid_token", "invalid signature"))
		if n := c.get("/token/introspection") - before; n != 0 {
			t.Errorf("%d introspection calls for tampered JWTs, want 0", n)
		}
		call(t, g, tamper(opaque, -1), http.StatusUnauthorized, wantChallenge("invalid_token", "token is not active"))
		if n := c.get("/token/introspection") - before; n != 1 {
			t.Errorf("%d introspection calls for a tampered opaque token, want 1", n)
		}
		call(t, g, jwt, http.StatusOK, "")
		call(t, g, opaque, http.StatusOK, "")
	})

	t.Run("JWT sent to introspection", func(t *testing.T) {
		tok := p.token(t, appID, appSecret, resource, "orders:read")
		status, body := p.introspect(t, tok)
		t.Logf("introspecting a JWT (direct): %d %s", status, body)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"unsupported_token_type"`) {
			t.Errorf("%d %s, want 400 unsupported_token_type", status, body)
		}
		c := newCounter()
		always := newGuard(t, p, c, func(cfg *tokenguard.Config) { cfg.Introspection.JWTs = tokenguard.IntrospectJWTAlways })
		// oidc-provider never introspects a JWT, so a guard that insists on
		// it refuses every JWT of this server: a verdict, not an outage.
		call(t, always, tok, http.StatusUnauthorized, wantChallenge("invalid_token", "token is not active"))
		call(t, always, tok, http.StatusUnauthorized, wantChallenge("invalid_token", "token is not active"))
		if n := c.get("/token/introspection"); n != 1 {
			t.Errorf("%d introspection calls for two requests, want 1 (the 400 is cached)", n)
		}
		// Opaque tokens still work on that guard.
		call(t, always, p.token(t, appID, appSecret, "", "orders:read"), http.StatusOK, "")
	})

	t.Run("signed introspection answers", func(t *testing.T) {
		tok := p.token(t, appID, appSecret, "", "orders:read")
		req, _ := http.NewRequest("POST", p.issuer+"/token/introspection", strings.NewReader("token="+tok))
		req.SetBasicAuth(rsJWTID, rsJWTSecret)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/token-introspection+jwt")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("signed introspection answer: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		if h, cl := shape(t, string(body)); h != nil {
			logJSON(t, "signed answer header", h)
			logJSON(t, "signed answer claims", cl)
		}

		signed := newGuard(t, p, newCounter(), func(cfg *tokenguard.Config) {
			cfg.Introspection = tokenguard.IntrospectionConfig{ClientID: rsJWTID, ClientSecret: rsJWTSecret, SignedResponses: true}
		})
		pr := call(t, signed, tok, http.StatusOK, "")
		if pr != nil && (pr.Kind != tokenguard.KindOpaque || pr.ClientID != appID) {
			t.Errorf("Principal %+v", pr)
		}
		if status, _ := p.revoke(t, tok); status != http.StatusOK {
			t.Fatalf("revocation: %d", status)
		}
		fresh := newGuard(t, p, newCounter(), func(cfg *tokenguard.Config) {
			cfg.Introspection = tokenguard.IntrospectionConfig{ClientID: rsJWTID, ClientSecret: rsJWTSecret, SignedResponses: true}
		})
		call(t, fresh, tok, http.StatusUnauthorized, wantChallenge("invalid_token", "token is not active"))
	})

	t.Logf("guard totals: %d GET /jwks, %d POST /token/introspection", c.get("/jwks"), c.get("/token/introspection"))
}

// TestKeyRotation restarts the provider on the same port (so the same
// issuer) with a new signing key published beside the old one: a token
// signed with the new key costs exactly one key-set fetch, and tokens signed
// with the old key keep working.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	node := needNode(t)
	k1, k2 := newKey(t, "k1"), newKey(t, "k2")
	p := startProvider(t, node, "0", k1)
	c := newCounter()
	g := newGuard(t, p, c, nil)
	old := p.token(t, appID, appSecret, resource, "orders:read")
	call(t, g, old, http.StatusOK, "")
	if n := c.get("/jwks"); n != 1 {
		t.Fatalf("%d key-set fetches after start, want 1", n)
	}

	p.stop()
	p = startProvider(t, node, p.port, k2, k1)
	fresh := p.token(t, appID, appSecret, resource, "orders:read")
	h, _ := shape(t, fresh)
	if h["kid"] != "k2" {
		t.Fatalf("new token's kid %v, want k2", h["kid"])
	}
	call(t, g, fresh, http.StatusOK, "")
	call(t, g, old, http.StatusOK, "")
	call(t, g, fresh, http.StatusOK, "")
	if n := c.get("/jwks"); n != 2 {
		t.Errorf("%d key-set fetches, want 2 (start + one for the new kid)", n)
	}
	// A kid neither key set has: refused, and within UnknownKeyCooldown no
	// further fetch.
	forged := strings.Replace(fresh, strings.SplitN(fresh, ".", 2)[0], b64(`{"alg":"RS256","typ":"at+jwt","kid":"k9"}`), 1)
	call(t, g, forged, http.StatusUnauthorized, wantChallenge("invalid_token", "unknown signing key"))
	if n := c.get("/jwks"); n != 2 {
		t.Errorf("%d key-set fetches after an unknown kid inside the cooldown, want 2", n)
	}
}
