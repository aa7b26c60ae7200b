package zitadel_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
)

// TestDiscovery: tokenguard finds everything from the OP's OpenID metadata
// (op serves no RFC 8414 document), and the issuer keeps its trailing "/".
func TestDiscovery(t *testing.T) {
	z := newOP(t)
	res, err := http.Get(z.issuer + ".well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	t.Logf("openid-configuration: %s", b)
	res, err = http.Get(strings.TrimSuffix(z.issuer, "/") + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	t.Logf("RFC 8414 document: %d (op serves none; tokenguard falls back to OpenID discovery)", res.StatusCode)

	g := z.guard(t, nil)
	if got := g.Issuers(); !slices.Equal(got, []string{z.issuer}) {
		t.Fatalf("Issuers() = %q, want [%q]", got, z.issuer)
	}
	if n := z.jwksHits.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches at New, want 1", n)
	}
	// The metadata announces client_secret_basic only (private_key_jwt
	// too with op.Config.AuthMethodPrivateKeyJWT, which tokenguard does
	// not speak): tokenguard picks basic, and op accepts it.
	if !strings.Contains(string(b), `"introspection_endpoint_auth_methods_supported":["client_secret_basic"]`) {
		t.Fatalf("introspection auth methods changed: %s", b)
	}
	var rc reached
	reject(t, g.Handler(rc.handler()), g, "", http.StatusUnauthorized, "", "")
}

// TestJWTAccepted: a client_credentials JWT access token of op is accepted.
// Its header has typ "JWT" (not at+jwt) and its claims no scope at all:
// Principal.Scopes is empty, so scope requirements cannot pass.
func TestJWTAccepted(t *testing.T) {
	z := newOP(t)
	g := z.guard(t, nil)
	tr := z.clientCredentials(t, jwtID, jwtSecret, audScope(project), "orders:read")
	logJSON(t, "token response", tr)
	header, claims := logJWT(t, "JWT access token", tr.AccessToken)
	if header["typ"] != "JWT" || header["alg"] != "RS256" || header["kid"] != "key-1" {
		t.Fatalf("header %v", header)
	}
	if _, ok := claims["scope"]; ok {
		t.Fatalf("op now puts scope in JWT access tokens: %v", claims)
	}
	if tr.Scope == "" {
		t.Fatal("token response without scope")
	}

	p := accept(t, g, tr.AccessToken)
	logJSON(t, "Principal", p)
	if p.Subject != jwtID || p.ClientID != jwtID || p.Issuer != z.issuer || p.Kind != tokenguard.KindJWT ||
		!slices.Equal(p.Audience, []string{project, jwtID}) || len(p.Scopes) != 0 ||
		p.TokenID != claims["jti"] || p.SubjectIsClient || p.Expiry.IsZero() || p.IssuedAt.IsZero() {
		t.Fatalf("Principal %+v", p)
	}

	// The scope was granted (token response, introspection) but is not in
	// the token: a scope requirement refuses it.
	var rc reached
	reject(t, g.RequireScopes("orders:read")(rc.handler()), g, tr.AccessToken,
		http.StatusForbidden, tokenguard.CodeInsufficientScope, "token lacks a required scope", "orders:read")
	logJSON(t, "introspection answer for the JWT", z.introspect(t, tr.AccessToken))

	// Strict RFC 9068 typing refuses every op JWT.
	strict := z.guard(t, func(c *tokenguard.Config) { c.RequireATJWTType = true })
	rejectToken(t, strict, tr.AccessToken, "token type not accepted")
}

// TestJWTScopesFromIntrospection: the scopes of an op JWT are only in the
// introspection answer. With IssuerIntrospectOn, a JWT without scope claims
// gets the answer's scopes, so RequireScopes works on op's JWTs; without
// it, they have none.
func TestJWTScopesFromIntrospection(t *testing.T) {
	z := newOP(t)
	g := z.guard(t, func(c *tokenguard.Config) {
		c.Issuers = []tokenguard.TrustedIssuer{{Issuer: z.issuer, Introspect: tokenguard.IssuerIntrospectOn}}
	})
	tok := z.clientCredentials(t, jwtID, jwtSecret, audScope(project), "orders:read").AccessToken
	if p := accept(t, g, tok); !p.HasScope("orders:read") {
		t.Fatalf("Scopes %q, want the answer's orders:read", p.Scopes)
	}
	if n := z.introspections.Load(); n != 1 {
		t.Fatalf("%d introspections, want 1", n)
	}
	var rc reached
	if w := call(g.RequireScopes("orders:read")(rc.handler()), tok); w.Code != http.StatusOK {
		t.Fatalf("RequireScopes(orders:read): %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// Without JWT introspection the JWT has no scopes: 403.
	plain := z.guard(t, nil)
	reject(t, plain.RequireScopes("orders:read")(rc.handler()), plain, tok,
		http.StatusForbidden, tokenguard.CodeInsufficientScope, "token lacks a required scope", "orders:read")
}

// TestOpaqueAccepted: op's opaque access tokens are five-part compact JWEs
// (A256GCMKW + A256GCM, encrypting "tokenID:subject" with op.Config's
// CryptoKey). tokenguard does not take them for JWTs and introspects them.
func TestOpaqueAccepted(t *testing.T) {
	z := newOP(t)
	g := z.guard(t, nil)
	tr := z.clientCredentials(t, opaqueID, opaqueSecret, audScope(project), "orders:read", "orders:write")
	parts := strings.Split(tr.AccessToken, ".")
	if len(parts) != 5 || parts[1] == "" {
		t.Fatalf("opaque token has %d parts, want a 5-part JWE with an encrypted key", len(parts))
	}
	h := segment(t, parts[0])
	logJSON(t, "opaque token (JWE) header", h)
	if h["alg"] != "A256GCMKW" || h["enc"] != "A256GCM" || h["kid"] != "opaque-1" {
		t.Fatalf("JWE header %v", h)
	}
	t.Logf("opaque token: %d bytes, part lengths %d/%d/%d/%d/%d", len(tr.AccessToken),
		len(parts[0]), len(parts[1]), len(parts[2]), len(parts[3]), len(parts[4]))

	p := accept(t, g, tr.AccessToken)
	logJSON(t, "Principal", p)
	if p.Subject != opaqueID || p.ClientID != opaqueID || p.Issuer != z.issuer || p.Kind != tokenguard.KindOpaque ||
		!slices.Equal(p.Audience, []string{project, opaqueID}) || !p.HasScope("orders:read") || !p.HasScope("orders:write") {
		t.Fatalf("Principal %+v", p)
	}
	var rc reached
	if w := call(g.RequireScopes("orders:write")(rc.handler()), tr.AccessToken); w.Code != http.StatusOK {
		t.Fatalf("RequireScopes: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	// The second and third request are answered from the cache.
	if n := z.introspections.Load(); n != 1 {
		t.Fatalf("%d introspections for 2 requests, want 1", n)
	}
	logJSON(t, "introspection answer", z.introspect(t, tr.AccessToken))

	// Without introspection credentials a JWE is refused, without a call.
	bare := z.guard(t, func(c *tokenguard.Config) { c.Introspection = tokenguard.IntrospectionConfig{} })
	rejectToken(t, bare, tr.AccessToken, "token is not a JWT")
}

// TestIntrospectionCredentialsRefused: op answers a wrong secret with 401
// text/plain; tokenguard fails closed (503, Retry-After), never 401.
func TestIntrospectionCredentialsRefused(t *testing.T) {
	z := newOP(t)
	status, b := z.post(t, "oauth/introspect", rsID, "wrong", url.Values{"token": {"x"}})
	t.Logf("op, wrong introspection secret: %d %q", status, b)
	g := z.guard(t, func(c *tokenguard.Config) { c.Introspection.ClientSecret = "wrong" })
	tok := z.clientCredentials(t, opaqueID, opaqueSecret, audScope(project)).AccessToken
	var rc reached
	w := call(g.Handler(rc.handler()), tok)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || w.Header().Get("WWW-Authenticate") != "" || rc.called {
		t.Fatalf("got %d, Retry-After %q, WWW-Authenticate %q; want 503 with Retry-After and no challenge",
			w.Code, w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"))
	}
	t.Logf("tokenguard: %d Retry-After %s body %s", w.Code, w.Header().Get("Retry-After"), strings.TrimSpace(w.Body.String()))

	// op's introspection authenticates callers with client_secret_basic or
	// a private_key_jwt client assertion (op.Provider verifies assertions
	// with Storage.GetKeyByIDAndClientID; the metadata lists private_key_jwt
	// only with op.Config.AuthMethodPrivateKeyJWT), never client_secret_post.
	// tokenguard sends post when told to, and op refuses it like a wrong secret.
	post := z.guard(t, func(c *tokenguard.Config) { c.Introspection.AuthMethod = "client_secret_post" })
	if w := call(post.Handler(rc.handler()), tok); w.Code != http.StatusServiceUnavailable || rc.called {
		t.Fatalf("client_secret_post: %d, want 503", w.Code)
	}
}

// TestRevoked: revocation at op's RFC 7009 endpoint.
func TestRevoked(t *testing.T) {
	z := newOP(t)

	t.Run("opaque, revoked before first use", func(t *testing.T) {
		g := z.guard(t, nil)
		tok := z.clientCredentials(t, opaqueID, opaqueSecret, audScope(project)).AccessToken
		z.revoke(t, opaqueID, opaqueSecret, tok, "access_token")
		logJSON(t, "introspection answer after revocation", z.introspect(t, tok))
		rejectToken(t, g, tok, "token is not active")
	})

	t.Run("opaque, revoked after use: visible once the cached answer expires (MaxTTL)", func(t *testing.T) {
		g := z.guard(t, func(c *tokenguard.Config) { c.Introspection.MaxTTL = time.Second })
		tok := z.clientCredentials(t, opaqueID, opaqueSecret, audScope(project)).AccessToken
		accept(t, g, tok)
		z.revoke(t, opaqueID, opaqueSecret, tok, "") // no hint: op tries refresh tokens first
		accept(t, g, tok)                            // the cached answer
		time.Sleep(1100 * time.Millisecond)
		rejectToken(t, g, tok, "token is not active")
	})

	t.Run("JWT: still accepted by default (validated locally)", func(t *testing.T) {
		g := z.guard(t, nil)
		tok := z.clientCredentials(t, jwtID, jwtSecret, audScope(project)).AccessToken
		z.revoke(t, jwtID, jwtSecret, tok, "access_token")
		if m := z.introspect(t, tok); m["active"] != false {
			t.Fatalf("op still says %v", m)
		}
		accept(t, g, tok)
	})

	t.Run("JWT: rejected when the issuer's JWTs are introspected", func(t *testing.T) {
		g := z.guard(t, func(c *tokenguard.Config) { c.Introspection.JWTs = tokenguard.IntrospectJWTAlways })
		tok := z.clientCredentials(t, jwtID, jwtSecret, audScope(project)).AccessToken
		z.revoke(t, jwtID, jwtSecret, tok, "access_token")
		rejectToken(t, g, tok, "token is not active")
	})
}

// TestExpired: tokens that op issued with a 1 s lifetime, presented after
// it (leeway off, so the test waits 2 s, not 30).
func TestExpired(t *testing.T) {
	z := newOP(t)
	z.st.mu.Lock()
	z.st.lifetime = time.Second
	z.st.mu.Unlock()
	g := z.guard(t, func(c *tokenguard.Config) { c.Leeway = -1 })
	jwtTok := z.clientCredentials(t, jwtID, jwtSecret, audScope(project)).AccessToken
	opaqueTok := z.clientCredentials(t, opaqueID, opaqueSecret, audScope(project)).AccessToken
	opaqueSeen := z.clientCredentials(t, opaqueID, opaqueSecret, audScope(project)).AccessToken
	accept(t, g, opaqueSeen) // cached while active
	time.Sleep(2100 * time.Millisecond)

	rejectToken(t, g, jwtTok, "token expired")
	logJSON(t, "introspection answer for an expired token", z.introspect(t, opaqueTok))
	rejectToken(t, g, opaqueTok, "token is not active") // op: active false
	rejectToken(t, g, opaqueSeen, "token expired")      // the cached answer's exp
}

// TestOtherAudience: tokens asked for without the project's aud scope carry
// only the client id as aud.
func TestOtherAudience(t *testing.T) {
	z := newOP(t)
	g := z.guard(t, nil)

	tr := z.clientCredentials(t, jwtID, jwtSecret, "orders:read")
	_, claims := logJWT(t, "JWT without the aud scope", tr.AccessToken)
	if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != jwtID {
		t.Fatalf("aud %v", claims["aud"])
	}
	rejectToken(t, g, tr.AccessToken, "token not meant for this resource")

	// Another project's audience.
	other := z.clientCredentials(t, jwtID, jwtSecret, audScope("other-project")).AccessToken
	rejectToken(t, g, other, "token not meant for this resource")

	// op (like ZITADEL) answers active:false to a resource server that is
	// not in the token's audience, so the guard never sees the aud.
	otok := z.clientCredentials(t, opaqueID, opaqueSecret, audScope("other-project")).AccessToken
	logJSON(t, "introspection answer, other audience", z.introspect(t, otok))
	rejectToken(t, g, otok, "token is not active")
}

// TestTampered: a changed byte anywhere.
func TestTampered(t *testing.T) {
	z := newOP(t)
	g := z.guard(t, nil)
	tok := z.clientCredentials(t, jwtID, jwtSecret, audScope(project)).AccessToken
	parts := strings.Split(tok, ".")

	t.Run("JWT signature", func(t *testing.T) {
		rejectToken(t, g, parts[0]+"."+parts[1]+"."+flip(parts[2], 10), "invalid signature")
	})
	t.Run("JWT claims (sub changed)", func(t *testing.T) {
		claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
		forged := strings.Replace(string(claims), `"sub":"svc-jwt"`, `"sub":"admin"`, 1)
		if forged == string(claims) {
			t.Fatalf("no sub in %s", claims)
		}
		rejectToken(t, g, parts[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(forged))+"."+parts[2], "invalid signature")
	})
	t.Run("JWT kid changed", func(t *testing.T) {
		before := z.jwksHits.Load()
		hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"key-9","typ":"JWT"}`))
		rejectToken(t, g, hdr+"."+parts[1]+"."+parts[2], "unknown signing key")
		t.Logf("unknown kid: %d JWKS fetch(es)", z.jwksHits.Load()-before)
	})
	t.Run("opaque JWE ciphertext", func(t *testing.T) {
		otok := z.clientCredentials(t, opaqueID, opaqueSecret, audScope(project)).AccessToken
		op := strings.Split(otok, ".")
		op[3] = flip(op[3], 0)
		forged := strings.Join(op, ".")
		logJSON(t, "introspection answer, tampered JWE", z.introspect(t, forged))
		rejectToken(t, g, forged, "token is not active")
	})
}

// TestKeyRotation: op switches to a second key (both published); the first
// token signed with it costs exactly one JWKS fetch, later ones none, and
// tokens of the first key keep working.
func TestKeyRotation(t *testing.T) {
	z := newOP(t)
	g := z.guard(t, nil)
	old := z.clientCredentials(t, jwtID, jwtSecret, audScope(project)).AccessToken
	accept(t, g, old)
	if n := z.jwksHits.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches before rotation, want 1", n)
	}

	z.st.rotate(testKeys(t)[1])
	tok := z.clientCredentials(t, jwtID, jwtSecret, audScope(project)).AccessToken
	if h, _ := logJWT(t, "after rotation", tok); h["kid"] != "key-2" {
		t.Fatalf("kid %v after rotation", h["kid"])
	}
	accept(t, g, tok)
	if n := z.jwksHits.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches after rotation, want 2 (exactly one extra)", n)
	}
	accept(t, g, z.clientCredentials(t, jwtID, jwtSecret, audScope(project)).AccessToken)
	accept(t, g, old)
	accept(t, g, z.clientCredentials(t, jwtID, jwtSecret, audScope(project)).AccessToken)
	if n := z.jwksHits.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want still 2", n)
	}

	// op retires the first key. A guard that verified (and cached) the old
	// token learns it at its next key-set fetch, here caused by a kid it
	// does not know; from then on the old token fails.
	g2 := z.guard(t, func(c *tokenguard.Config) { c.UnknownKeyCooldown = time.Millisecond })
	accept(t, g2, old)
	z.st.retire("key-1")
	accept(t, g2, old) // the cached verification, keys not fetched since
	time.Sleep(5 * time.Millisecond)
	parts := strings.Split(tok, ".")
	unknownKid := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"key-9","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2]
	rejectToken(t, g2, unknownKid, "unknown signing key")
	rejectToken(t, g2, old, "unknown signing key")
	accept(t, g2, tok)
}

// TestRefreshToken: the client_credentials grant of op yields no refresh
// token; the authorization code flow with offline_access does. The refresh
// token (whatever the storage makes: here, as in op's example, an id) is
// not a JWS, goes to introspection, and op does not know it as an access
// token. The ID token of the same flow is refused as an access token.
func TestRefreshToken(t *testing.T) {
	z := newOP(t)
	g := z.guard(t, nil)
	if tr := z.clientCredentials(t, jwtID, jwtSecret, audScope(project)); tr.RefreshToken != "" {
		t.Fatalf("client_credentials yielded a refresh token %q", tr.RefreshToken)
	}

	tr := z.codeFlow(t, "alice", "openid", "offline_access", audScope(project), "orders:read")
	logJSON(t, "code flow token response", tr)
	if tr.RefreshToken == "" || tr.IDToken == "" {
		t.Fatal("no refresh or ID token")
	}
	logJWT(t, "user JWT access token", tr.AccessToken)
	p := accept(t, g, tr.AccessToken)
	logJSON(t, "Principal (user token)", p)
	if p.Subject != "alice" || p.ClientID != webID || p.SubjectIsClient || len(p.Scopes) != 0 {
		t.Fatalf("Principal %+v", p)
	}

	logJSON(t, "introspection answer for the refresh token", z.introspect(t, tr.RefreshToken))
	before := z.introspections.Load()
	rejectToken(t, g, tr.RefreshToken, "token is not active")
	if n := z.introspections.Load() - before; n != 1 {
		t.Fatalf("%d introspections for the refresh token, want 1", n)
	}

	logJWT(t, "ID token", tr.IDToken) // at_hash, c_hash, nonce, typ JWT, aud includes the project
	rejectToken(t, g, tr.IDToken, "token type not accepted")

	// The refresh token still works where it belongs.
	again := z.tokenRequest(t, webID, webSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}})
	accept(t, g, again.AccessToken)
}

// TestIssuerWithoutTrailingSlash: the issuer is compared exactly (RFC 8414
// §3.3), so Config.Issuer must carry op's trailing "/".
func TestIssuerWithoutTrailingSlash(t *testing.T) {
	z := newOP(t)
	_, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuer: strings.TrimSuffix(z.issuer, "/"), Audience: project, InsecureAllowHTTP: true,
	})
	if err == nil {
		t.Fatal("New accepted an issuer that differs from the metadata's by its trailing /")
	}
	t.Logf("New: %v", err)
}

// TestOpaqueCoalesced: many requests at once with one new opaque token make
// one introspection call at op.
func TestOpaqueCoalesced(t *testing.T) {
	z := newOP(t)
	g := z.guard(t, nil)
	tok := z.clientCredentials(t, opaqueID, opaqueSecret, audScope(project)).AccessToken
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	var wg sync.WaitGroup
	codes := make([]int, 32)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = call(h, tok).Code
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	if n := z.introspections.Load(); n != 1 {
		t.Fatalf("%d introspection calls for 32 concurrent requests, want 1", n)
	}
}

// flip changes the base64url letter at i of s into another one, so the
// token stays syntactically valid.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}
