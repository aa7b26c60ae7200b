package fositeinterop

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
)

const invalidToken = tokenguard.CodeInvalidToken

// TestJWTStrategy runs tokenguard against fosite's DefaultJWTStrategy
// (ES256), validating access tokens locally against the JWK Set.
func TestJWTStrategy(t *testing.T) {
	as := newAuthServer(t, asOptions{strategy: jwtStrategy})
	g := newGuard(t, as, nil)

	t.Run("no token", func(t *testing.T) {
		wantRejected(t, g, "", http.StatusUnauthorized, "", "")
	})

	t.Run("valid client-credentials JWT", func(t *testing.T) {
		tr := as.clientCredentials(t, ccClientID, "orders:read orders:write", resource)
		t.Logf("token response: token_type %q expires_in %d scope %q refresh_token %q", tr.TokenType, tr.ExpiresIn, tr.Scope, tr.RefreshToken)
		header, claims := logJWT(t, "fosite JWT access token (client_credentials)", tr.AccessToken)
		if header["alg"] != "ES256" || header["kid"] != "es256-1" || header["typ"] != "JWT" {
			t.Errorf("header %v: want alg ES256, kid es256-1, typ JWT", header)
		}
		before := as.introspections.Load()
		p := wantOK(t, g, tr.AccessToken)
		if p.Subject != ccClientID || p.ClientID != ccClientID || p.Issuer != as.issuer || p.Kind != tokenguard.KindJWT {
			t.Errorf("Principal: Subject %q ClientID %q Issuer %q Kind %v; want %q %q %q jwt", p.Subject, p.ClientID, p.Issuer, p.Kind, ccClientID, ccClientID, as.issuer)
		}
		if !sameStrings(p.Scopes, []string{"orders:read", "orders:write"}) || !sameStrings(p.Audience, []string{resource}) {
			t.Errorf("Principal: Scopes %q Audience %q", p.Scopes, p.Audience)
		}
		if p.TokenID == "" || p.TokenID != claims["jti"] {
			t.Errorf("Principal.TokenID %q, jti %v", p.TokenID, claims["jti"])
		}
		if d := time.Until(p.Expiry); d < 59*time.Minute || d > time.Hour {
			t.Errorf("Principal.Expiry in %s, want about 1h", d)
		}
		if !p.HasScope("orders:write") || p.HasScope("orders") {
			t.Errorf("HasScope: %q", p.Scopes)
		}
		if n := as.introspections.Load() - before; n != 0 {
			t.Errorf("%d introspection calls for a JWT, want 0", n)
		}
	})

	t.Run("expired", func(t *testing.T) {
		tr := as.clientCredentials(t, expiredClientID, "orders:read", resource)
		logJWT(t, "expired JWT", tr.AccessToken)
		wantRejected(t, g, tr.AccessToken, http.StatusUnauthorized, invalidToken, "token expired")
	})

	t.Run("other audience", func(t *testing.T) {
		tr := as.clientCredentials(t, ccClientID, "orders:read", otherAudience)
		wantRejected(t, g, tr.AccessToken, http.StatusUnauthorized, invalidToken, "token not meant for this resource")
	})

	t.Run("no audience requested", func(t *testing.T) {
		// fosite writes "aud": [] when the client asks for none.
		tr := as.clientCredentials(t, ccClientID, "orders:read", "")
		_, claims := logJWT(t, "JWT without a requested audience", tr.AccessToken)
		if aud, ok := claims["aud"].([]any); !ok || len(aud) != 0 {
			t.Errorf("aud %v, want []", claims["aud"])
		}
		wantRejected(t, g, tr.AccessToken, http.StatusUnauthorized, invalidToken, "token not meant for this resource")
	})

	t.Run("tampered claims", func(t *testing.T) {
		tr := as.clientCredentials(t, ccClientID, "orders:read", resource)
		forged := forgeClaims(t, tr.AccessToken, func(c map[string]any) { c["scp"] = []string{"orders:read", "orders:write", "admin"} })
		wantRejected(t, g, forged, http.StatusUnauthorized, invalidToken, "invalid signature")
		wantOK(t, g, tr.AccessToken)
	})

	t.Run("tampered signature", func(t *testing.T) {
		tr := as.clientCredentials(t, ccClientID, "orders:read", resource)
		wantRejected(t, g, tamper(tr.AccessToken, 2), http.StatusUnauthorized, invalidToken, "invalid signature")
	})

	t.Run("scope requirement", func(t *testing.T) {
		tr := as.clientCredentials(t, ccClientID, "orders:read", resource)
		rec := callRequire(g, tr.AccessToken, "orders:write")
		want := `Bearer realm="` + resource + `", error="insufficient_scope", error_description="token lacks a required scope", scope="orders:write", resource_metadata="` + metadataURL + `"`
		if rec.status != http.StatusForbidden || rec.challenge != want {
			t.Fatalf("got %d %s\nwant 403 %s", rec.status, rec.challenge, want)
		}
	})
}

// TestJWTKeyRotation rotates the key fosite signs with (ES256 to a new
// RS256 key, both published) and checks that tokenguard fetches the JWK Set
// exactly once for the new key id, however many requests carry it at once.
func TestJWTKeyRotation(t *testing.T) {
	as := newAuthServer(t, asOptions{strategy: jwtStrategy})
	g := newGuard(t, as, nil)
	start := as.jwksHits.Load()
	if start != 1 {
		t.Fatalf("%d JWK Set fetches at start, want 1", start)
	}
	old := as.clientCredentials(t, ccClientID, "orders:read", resource)
	wantOK(t, g, old.AccessToken)

	as.rotate(newRSAKey(t, "rs256-2"))
	fresh := as.clientCredentials(t, ccClientID, "orders:read", resource)
	header, _ := logJWT(t, "JWT after rotation", fresh.AccessToken)
	if header["alg"] != "RS256" || header["kid"] != "rs256-2" {
		t.Fatalf("header %v: want RS256 rs256-2", header)
	}

	var wg sync.WaitGroup
	results := make([]result, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = call(g, fresh.AccessToken)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.status != http.StatusOK {
			t.Errorf("concurrent request %d: %d %s", i, r.status, r.challenge)
		}
	}
	wantOK(t, g, fresh.AccessToken)
	wantOK(t, g, old.AccessToken) // the old key is still published
	if n := as.jwksHits.Load() - start; n != 1 {
		t.Fatalf("%d JWK Set fetches after rotation, want exactly 1", n)
	}
}

// TestJWTIntrospectionAfterRotation: fosite's JWT strategy checks a JWT at
// introspection with its current key only (jwt.DefaultSigner holds one), so
// after a rotation it answers {"active":false} for a JWT signed with the old
// key that is still published and valid. With IntrospectJWTAlways tokenguard
// then refuses it; local validation accepts it.
func TestJWTIntrospectionAfterRotation(t *testing.T) {
	as := newAuthServer(t, asOptions{strategy: jwtStrategy})
	local := newGuard(t, as, nil)
	always := newGuard(t, as, func(c *tokenguard.Config) { c.Introspection.JWTs = tokenguard.IntrospectJWTAlways })
	old := as.clientCredentials(t, ccClientID, "orders:read", resource)
	as.rotate(newRSAKey(t, "rs256-2"))
	wantOK(t, local, old.AccessToken)
	wantRejected(t, always, old.AccessToken, http.StatusUnauthorized, invalidToken, "token is not active")
	t.Logf("fosite introspection answer for a JWT of the previous key: %s", as.lastAnswer())
	fresh := as.clientCredentials(t, ccClientID, "orders:read", resource)
	wantOK(t, always, fresh.AccessToken)
}

// TestJWTRevocation: fosite's revocation endpoint deletes a JWT's session,
// which local validation cannot see; IntrospectJWTAlways makes it visible.
func TestJWTRevocation(t *testing.T) {
	as := newAuthServer(t, asOptions{strategy: jwtStrategy})
	local := newGuard(t, as, nil)
	always := newGuard(t, as, func(c *tokenguard.Config) { c.Introspection.JWTs = tokenguard.IntrospectJWTAlways })

	live := as.clientCredentials(t, ccClientID, "orders:read", resource)
	p := wantOK(t, always, live.AccessToken)
	t.Logf("fosite introspection answer for a JWT (JWT strategy): %s", as.lastAnswer())
	if p.Kind != tokenguard.KindJWT || p.Subject != ccClientID {
		t.Errorf("Principal Kind %v Subject %q", p.Kind, p.Subject)
	}

	tr := as.clientCredentials(t, ccClientID, "orders:read", resource)
	wantOK(t, local, tr.AccessToken)
	as.revoke(t, ccClientID, ccSecret, tr.AccessToken)
	// Local validation only: the revoked JWT stays valid until exp.
	wantOK(t, local, tr.AccessToken)
	wantRejected(t, always, tr.AccessToken, http.StatusUnauthorized, invalidToken, "token is not active")
	t.Logf("fosite introspection answer for a revoked JWT: %s", as.lastAnswer())
}

// TestStockJWTSession records what fosite's JWT strategy issues when the
// integrator fills no claims (an empty oauth2.JWTSession, as in fosite's own
// integration tests): no sub and no client_id. tokenguard accepts it with
// an empty Subject and ClientID; nothing in the token names the client, so
// no TokenShape option (ClientAsSubject, ClientIDClaim) can recover it. The
// authorization server must fill them, as newAuthServer does.
func TestStockJWTSession(t *testing.T) {
	as := newAuthServer(t, asOptions{strategy: jwtStrategy, stockSession: true})
	g := newGuard(t, as, nil)
	tr := as.clientCredentials(t, ccClientID, "orders:read", resource)
	_, claims := logJWT(t, "fosite JWT from an empty JWTSession", tr.AccessToken)
	if _, ok := claims["sub"]; ok {
		t.Errorf("sub %v present", claims["sub"])
	}
	if _, ok := claims["client_id"]; ok {
		t.Errorf("client_id %v present", claims["client_id"])
	}
	p := wantOK(t, g, tr.AccessToken)
	if p.Subject != "" || p.ClientID != "" || p.SubjectIsClient {
		t.Errorf("Principal Subject %q ClientID %q SubjectIsClient %v, want all empty", p.Subject, p.ClientID, p.SubjectIsClient)
	}
}

// TestHMACStrategy runs tokenguard against fosite's HMAC strategy
// (compose.ComposeAllEnabled): opaque ory_at_ tokens, judged by fosite's
// introspection endpoint.
func TestHMACStrategy(t *testing.T) {
	as := newAuthServer(t, asOptions{strategy: hmacStrategy})
	g := newGuard(t, as, nil)

	t.Run("valid opaque token", func(t *testing.T) {
		tr := as.clientCredentials(t, ccClientID, "orders:read orders:write", resource)
		t.Logf("fosite opaque access token: %s", shape(tr.AccessToken))
		if !strings.HasPrefix(tr.AccessToken, "ory_at_") {
			t.Errorf("access token %s lacks ory_at_", shape(tr.AccessToken))
		}
		before := as.introspections.Load()
		p := wantOK(t, g, tr.AccessToken)
		t.Logf("fosite introspection answer: %s", as.lastAnswer())
		if p.Subject != ccClientID || p.ClientID != ccClientID || p.Issuer != as.issuer || p.Kind != tokenguard.KindOpaque {
			t.Errorf("Principal: Subject %q ClientID %q Issuer %q Kind %v", p.Subject, p.ClientID, p.Issuer, p.Kind)
		}
		if !sameStrings(p.Scopes, []string{"orders:read", "orders:write"}) || !sameStrings(p.Audience, []string{resource}) {
			t.Errorf("Principal: Scopes %q Audience %q", p.Scopes, p.Audience)
		}
		if d := time.Until(p.Expiry); d < 59*time.Minute || d > time.Hour {
			t.Errorf("Principal.Expiry in %s, want about 1h", d)
		}
		wantOK(t, g, tr.AccessToken)
		if n := as.introspections.Load() - before; n != 1 {
			t.Errorf("%d introspection calls for two requests, want 1 (cached)", n)
		}
	})

	t.Run("expired", func(t *testing.T) {
		// fosite itself judges the token expired: {"active":false}.
		tr := as.clientCredentials(t, expiredClientID, "orders:read", resource)
		wantRejected(t, g, tr.AccessToken, http.StatusUnauthorized, invalidToken, "token is not active")
		if a := as.lastAnswer(); a != `{"active":false}` {
			t.Errorf("answer %s", a)
		}
	})

	t.Run("other audience", func(t *testing.T) {
		tr := as.clientCredentials(t, ccClientID, "orders:read", otherAudience)
		wantRejected(t, g, tr.AccessToken, http.StatusUnauthorized, invalidToken, "token not meant for this resource")
		t.Logf("fosite introspection answer: %s", as.lastAnswer())
	})

	t.Run("no aud: accepted by default, refused with RequireAudience", func(t *testing.T) {
		// A token issued without an audience is answered without aud. RFC
		// 7662 makes aud optional, so by default that is the issuer
		// vouching for it here: any fosite client's audience-less token
		// would open this API. RequireAudience refuses it.
		tr := as.clientCredentials(t, ccClientID, "orders:read", "")
		p := wantOK(t, g, tr.AccessToken)
		t.Logf("fosite introspection answer without aud: %s", as.lastAnswer())
		if len(p.Audience) != 0 {
			t.Errorf("Audience %q", p.Audience)
		}
		strict := newGuard(t, as, func(c *tokenguard.Config) { c.Introspection.RequireAudience = true })
		wantRejected(t, strict, tr.AccessToken, http.StatusUnauthorized, invalidToken, "token not meant for this resource")
	})

	t.Run("tampered", func(t *testing.T) {
		tr := as.clientCredentials(t, ccClientID, "orders:read", resource)
		wantRejected(t, g, tamper(tr.AccessToken, 1), http.StatusUnauthorized, invalidToken, "token is not active")
		wantOK(t, g, tr.AccessToken)
	})

	t.Run("revoked before first use", func(t *testing.T) {
		tr := as.clientCredentials(t, ccClientID, "orders:read", resource)
		as.revoke(t, ccClientID, ccSecret, tr.AccessToken)
		wantRejected(t, g, tr.AccessToken, http.StatusUnauthorized, invalidToken, "token is not active")
	})

	t.Run("revoked after use", func(t *testing.T) {
		// A cached active answer outlives a revocation by at most MaxTTL.
		const maxTTL = time.Second
		g := newGuard(t, as, func(c *tokenguard.Config) { c.Introspection.MaxTTL = maxTTL })
		tr := as.clientCredentials(t, ccClientID, "orders:read", resource)
		cachedAt := time.Now()
		wantOK(t, g, tr.AccessToken)
		calls := as.introspections.Load()
		as.revoke(t, ccClientID, ccSecret, tr.AccessToken)
		if time.Since(cachedAt) < maxTTL/2 {
			wantOK(t, g, tr.AccessToken) // from the cache
		}
		time.Sleep(time.Until(cachedAt.Add(maxTTL + 100*time.Millisecond)))
		wantRejected(t, g, tr.AccessToken, http.StatusUnauthorized, invalidToken, "token is not active")
		wantRejected(t, g, tr.AccessToken, http.StatusUnauthorized, invalidToken, "token is not active")
		if n := as.introspections.Load() - calls; n != 1 {
			t.Errorf("%d introspection calls after revocation, want 1 (the refusal is cached)", n)
		}
	})
}

// TestRefreshToken presents fosite refresh tokens (ory_rt_, from the
// password grant with scope offline) as access tokens, with both strategies.
func TestRefreshToken(t *testing.T) {
	for _, s := range []strategy{jwtStrategy, hmacStrategy} {
		t.Run(s.String(), func(t *testing.T) {
			as := newAuthServer(t, asOptions{strategy: s})
			tr := as.passwordGrant(t)
			t.Logf("refresh token: %s", shape(tr.RefreshToken))
			if !strings.HasPrefix(tr.RefreshToken, "ory_rt_") {
				t.Fatalf("refresh token %s lacks ory_rt_", shape(tr.RefreshToken))
			}

			t.Run("access token of the same grant accepted", func(t *testing.T) {
				g := newGuard(t, as, nil)
				if s == jwtStrategy {
					logJWT(t, "fosite JWT access token (password grant)", tr.AccessToken)
				} else {
					t.Logf("access token: %s", shape(tr.AccessToken))
				}
				p := wantOK(t, g, tr.AccessToken)
				if s == hmacStrategy {
					t.Logf("fosite introspection answer (password grant): %s", as.lastAnswer())
				}
				if p.Subject == "" || p.ClientID != appClientID || !sameStrings(p.Scopes, []string{"orders:read", "offline"}) {
					t.Errorf("Principal Subject %q ClientID %q Scopes %q", p.Subject, p.ClientID, p.Scopes)
				}
			})

			t.Run("refused with TokenPrefixes ory_at_, without a call", func(t *testing.T) {
				g := newGuard(t, as, func(c *tokenguard.Config) { c.Introspection.TokenPrefixes = []string{"ory_at_"} })
				before := as.introspections.Load()
				wantRejected(t, g, tr.RefreshToken, http.StatusUnauthorized, invalidToken, "token not recognised")
				if n := as.introspections.Load() - before; n != 0 {
					t.Errorf("%d introspection calls, want 0", n)
				}
				if s == hmacStrategy {
					wantOK(t, g, tr.AccessToken)
				}
			})

			t.Run("refused when the answer has token_use (as Hydra sends)", func(t *testing.T) {
				hydraLike := newAuthServer(t, asOptions{strategy: s, announceTokenUse: true})
				rt := hydraLike.passwordGrant(t)
				g := newGuard(t, hydraLike, nil)
				wantRejected(t, g, rt.RefreshToken, http.StatusUnauthorized, invalidToken, "not an access token")
				t.Logf("introspection answer with token_use added: %s", hydraLike.lastAnswer())
			})

			t.Run("refused when fosite introspects access tokens only (DisableRefreshTokenValidation)", func(t *testing.T) {
				strict := newAuthServer(t, asOptions{strategy: s, disableRefreshTokenValidation: true})
				rt := strict.passwordGrant(t)
				g := newGuard(t, strict, nil)
				wantRejected(t, g, rt.RefreshToken, http.StatusUnauthorized, invalidToken, "token is not active")
				if s == hmacStrategy {
					wantOK(t, g, rt.AccessToken)
				}
			})

			t.Run("hazard: accepted with neither, as fosite's answer has no token_use", func(t *testing.T) {
				// fosite's WriteIntrospectionResponse drops the token use it
				// found, so a refresh token's answer looks like an access
				// token's, exp included (the session's access-token expiry).
				// SendTokenTypeHint does not help: fosite tries the access
				// token first and then the refresh token whatever the hint.
				for _, hint := range []bool{false, true} {
					g := newGuard(t, as, func(c *tokenguard.Config) { c.Introspection.SendTokenTypeHint = hint })
					p := wantOK(t, g, tr.RefreshToken)
					t.Logf("SendTokenTypeHint %v: fosite introspection answer for a refresh token: %s", hint, as.lastAnswer())
					if p.Kind != tokenguard.KindOpaque || p.ClientID != appClientID {
						t.Errorf("Principal Kind %v ClientID %q", p.Kind, p.ClientID)
					}
				}
			})

			t.Run("refresh grant gives a working access token", func(t *testing.T) {
				g := newGuard(t, as, nil)
				fresh := as.token(t, appClientID, appSecret, map[string][]string{
					"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken},
				})
				if s == jwtStrategy {
					logJWT(t, "JWT from the refresh grant", fresh.AccessToken)
				}
				p := wantOK(t, g, fresh.AccessToken)
				if p.ClientID != appClientID || !sameStrings(p.Audience, []string{resource}) {
					t.Errorf("Principal ClientID %q Audience %q", p.ClientID, p.Audience)
				}
			})
		})
	}
}

// callRequire sends token to an API that requires scopes.
func callRequire(g *tokenguard.Guard, token string, scopes ...string) result {
	req := httptest.NewRequest(http.MethodGet, "https://api.example.test/orders", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	g.RequireScopes(scopes...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).ServeHTTP(rec, req)
	return result{status: rec.Code, challenge: rec.Header().Get("WWW-Authenticate")}
}
