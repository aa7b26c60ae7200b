package tokenguard_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Recorded token shapes of servers that cannot run here: the header and
// claims each issues (from its public documentation), re-signed by the
// test's own server with its iss. Each runs through the default, which
// must answer exactly as it does, and through the TokenShape that makes it
// work, which must yield the right Principal.

type recordedShape struct {
	server string
	header map[string]any // merged over {alg, kid}; typ as the server sends it
	claims oauthtest.Claims
	// audience is the audience the user configures for the server.
	audience string
	shape    tokenguard.TokenShape
	// byDefault is the exact answer without the shape: "" for accepted,
	// else the error_description of a 401.
	byDefault string
	want      func(t *testing.T, p *tokenguard.Principal)
}

func recordedShapes(now time.Time) []recordedShape {
	exp, iat := now.Add(time.Hour).Unix(), now.Unix()
	return []recordedShape{
		{
			server: "Keycloak 24",
			header: map[string]any{"typ": "JWT"},
			claims: oauthtest.Claims{
				"exp": exp, "iat": iat, "auth_time": iat, "jti": "3f1b2c5e-7d4a-4b8e-9c1f-2a6d8e0b4c7a",
				"aud": "account", "sub": "f8a3c1d2-4b5e-4f6a-8b7c-9d0e1f2a3b4c", "typ": "Bearer", "azp": "orders-app",
				"nonce": "n-0S6_WzA2Mj", "session_state": "5c2e", "acr": "1", "allowed-origins": []string{"https://app.example"},
				"realm_access":    map[string]any{"roles": []string{"offline_access", "orders-admin"}},
				"resource_access": map[string]any{"orders-api": map[string]any{"roles": []string{"read"}}, "account": map[string]any{"roles": []string{"view-profile"}}},
				"scope":           "openid email profile", "sid": "5c2e", "preferred_username": "alice", "client_id": nil,
			},
			audience:  "account",
			shape:     tokenguard.TokenShape{AllowIDTokenClaims: true, ClientIDClaim: "azp", RoleClaims: []string{"realm_access.roles", "resource_access.orders-api.roles"}},
			byDefault: "token type not accepted", // nonce: an ID token by RFC 9068's rules
			want: func(t *testing.T, p *tokenguard.Principal) {
				if p.ClientID != "orders-app" || !slices.Equal(p.Roles, []string{"offline_access", "orders-admin", "read"}) || !p.HasScope("email") {
					t.Errorf("principal %+v", p)
				}
			},
		},
		{
			server: "Amazon Cognito",
			header: map[string]any{"typ": nil},
			claims: oauthtest.Claims{
				"sub": "aab1c2d3-e4f5-6789-abcd-ef0123456789", "cognito:groups": []string{"admins"}, "version": 2,
				"client_id": "7abcdefghij1234567890klmno", "origin_jti": "b1c2", "event_id": "e1f2", "token_use": "access",
				"scope": "aws.cognito.signin.user.admin orders/read", "auth_time": iat, "exp": exp, "iat": iat,
				"jti": "c3d4", "username": "alice", "aud": nil,
			},
			audience:  "7abcdefghij1234567890klmno",
			shape:     tokenguard.TokenShape{AudienceClaim: "client_id", TokenUse: "access", RoleClaims: []string{"cognito:groups"}},
			byDefault: "token not meant for this resource", // no aud
			want: func(t *testing.T, p *tokenguard.Principal) {
				if !p.HasScope("orders/read") || !p.HasRole("admins") || len(p.Audience) != 1 || p.Audience[0] != "7abcdefghij1234567890klmno" {
					t.Errorf("principal %+v", p)
				}
			},
		},
		{
			server: "Microsoft Entra ID v2",
			header: map[string]any{"typ": "JWT"},
			claims: oauthtest.Claims{
				"aud": "api://orders", "iat": iat, "nbf": iat, "exp": exp, "aio": "AXQAi", "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
				"azpacr": "0", "name": "Alice", "oid": "690222be-ff1a-4d56-abd1-7e4f7d38e474", "preferred_username": "alice@contoso.example",
				"rh": "I", "roles": []string{"Orders.ReadWrite"}, "scp": "Orders.Read User.Read", "sub": "HKZpfaHyWadeOouYlitjrI-KffTm222X5rrV3xDqfKQ",
				"tid": "9188040d-6c67-4c5b-b112-36a304b66dad", "uti": "fqiBqXLPj0eQa82S-IYFAA", "ver": "2.0", "client_id": nil,
			},
			audience:  "api://orders",
			shape:     tokenguard.TokenShape{ClientIDClaim: "azp", RoleClaims: []string{"roles"}},
			byDefault: "", // accepted: scp is read by default; roles and azp need the shape
			want: func(t *testing.T, p *tokenguard.Principal) {
				if !p.HasScope("Orders.Read") || !p.HasRole("Orders.ReadWrite") || p.ClientID != "6e74172b-be56-4843-9ff4-e66a39bb12e3" {
					t.Errorf("principal %+v", p)
				}
			},
		},
		{
			server: "Microsoft Entra ID v1",
			header: map[string]any{"typ": "JWT"},
			claims: oauthtest.Claims{
				"aud": "00000003-0000-0000-c000-000000000000", "iat": iat, "nbf": iat, "exp": exp, "appid": "6e74172b-be56-4843-9ff4-e66a39bb12e3",
				"appidacr": "1", "roles": []string{"Orders.Read.All"}, "sub": "6e74172b", "tid": "9188040d", "ver": "1.0", "client_id": nil,
			},
			audience:  "00000003-0000-0000-c000-000000000000",
			shape:     tokenguard.TokenShape{ClientIDClaim: "appid", RoleClaims: []string{"roles"}},
			byDefault: "",
			want: func(t *testing.T, p *tokenguard.Principal) {
				if !p.HasRole("Orders.Read.All") || p.ClientID != "6e74172b-be56-4843-9ff4-e66a39bb12e3" {
					t.Errorf("principal %+v", p)
				}
			},
		},
		{
			server: "Auth0",
			header: map[string]any{"typ": "JWT"},
			claims: oauthtest.Claims{
				"sub": "auth0|64f1c2", "aud": []string{"https://api.example.com", "https://tenant.auth0.example/userinfo"}, "iat": iat, "exp": exp,
				"azp": "Yx9kP2", "scope": "openid profile read:orders", "permissions": []string{"read:orders", "write:orders"}, "client_id": nil,
			},
			audience: "https://api.example.com",
			shape:    tokenguard.TokenShape{ClientIDClaim: "azp", ScopeClaims: []string{"scope", "permissions"}},
			want: func(t *testing.T, p *tokenguard.Principal) {
				if !p.HasScope("write:orders") || !p.HasScope("openid") || p.ClientID != "Yx9kP2" {
					t.Errorf("principal %+v", p)
				}
			},
		},
		{
			server: "Okta",
			header: map[string]any{"typ": nil},
			claims: oauthtest.Claims{
				"ver": 1, "jti": "AT.0mP4", "aud": "api://default", "iat": iat, "exp": exp, "cid": "0oa1b2c3d4",
				"uid": "00u1b2c3", "scp": []string{"orders.read", "offline_access"}, "auth_time": iat, "sub": "alice@example.com", "client_id": nil,
			},
			audience: "api://default",
			shape:    tokenguard.TokenShape{ClientIDClaim: "cid"},
			want: func(t *testing.T, p *tokenguard.Principal) {
				if !p.HasScope("orders.read") || p.ClientID != "0oa1b2c3d4" || p.Subject != "alice@example.com" {
					t.Errorf("principal %+v", p)
				}
			},
		},
		{
			server: "Dex",
			header: map[string]any{"typ": nil},
			claims: oauthtest.Claims{
				"sub": "CiQwOGE4Njg0Yi1kYjg4LTRiNzMtOTBhOS0zY2QxNjYxZjU0NjYSBWxvY2Fs", "aud": "orders-app", "exp": exp, "iat": iat,
				"at_hash": "p2Kz5Q3Vq1w", "email": "alice@example.com", "email_verified": true, "name": "Alice", "client_id": nil,
			},
			audience:  "orders-app",
			shape:     tokenguard.TokenShape{AllowIDTokenClaims: true},
			byDefault: "token type not accepted", // at_hash
			want: func(t *testing.T, p *tokenguard.Principal) {
				if p.Subject == "" || len(p.Scopes) != 0 {
					t.Errorf("principal %+v", p)
				}
			},
		},
		{
			server:   "Authelia client credentials",
			header:   map[string]any{},
			claims:   oauthtest.Claims{"sub": nil, "client_id": "orders-worker", "scope": "orders:sync", "aud": "https://api.example.com"},
			audience: "https://api.example.com",
			shape:    tokenguard.TokenShape{ClientAsSubject: true},
			want: func(t *testing.T, p *tokenguard.Principal) {
				if p.Subject != "orders-worker" || !p.SubjectIsClient {
					t.Errorf("principal %+v", p)
				}
			},
		},
	}
}

func TestRecordedTokenShapes(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	for _, rs := range recordedShapes(time.Now()) {
		t.Run(rs.server, func(t *testing.T) {
			tok := as.MintWith(oauthtest.MintOptions{Header: rs.header, Claims: rs.claims})
			for _, withShape := range []bool{false, true} {
				entry := tokenguard.TrustedIssuer{Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: rs.audience}
				if withShape {
					entry.Shape = rs.shape
				}
				g := newGuardAt(t, tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{entry}})
				var p *tokenguard.Principal
				w := call(g.Handler(principalHandler(&p)), "Bearer "+tok)
				switch {
				case withShape:
					if w.Code != 200 {
						t.Fatalf("with its shape: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
					}
					rs.want(t, p)
				case rs.byDefault == "":
					if w.Code != 200 {
						t.Errorf("by default: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
					}
				default:
					want := `Bearer error="invalid_token", error_description="` + rs.byDefault + `"`
					if got := w.Header().Get("WWW-Authenticate"); w.Code != 401 || got != want {
						t.Errorf("by default: %d %s, want 401 %s", w.Code, got, want)
					}
				}
			}
		})
	}
}

// What each shape opts in to stays confined: an ID token of another
// client fails on its aud even with AllowIDTokenClaims; a Cognito ID token
// (token_use id) fails the TokenUse check; New refuses AllowIDTokenClaims
// without the audience check.
func TestTokenShapesStayStrict(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	dex := tokenguard.TrustedIssuer{Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: "orders-app", Shape: tokenguard.TokenShape{AllowIDTokenClaims: true}}
	g := newGuardAt(t, tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{dex}})
	h := g.Handler(http.NotFoundHandler())
	other := as.Mint(oauthtest.Claims{"aud": "another-client", "at_hash": "x", "nonce": "n"})
	if w := call(h, "Bearer "+other); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "token not meant for this resource") {
		t.Errorf("Dex: ID token of another client: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	cognito := tokenguard.TrustedIssuer{Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: "app-client",
		Shape: tokenguard.TokenShape{AudienceClaim: "client_id", TokenUse: "access"}}
	g = newGuardAt(t, tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{cognito}})
	h = g.Handler(http.NotFoundHandler())
	idToken := as.Mint(oauthtest.Claims{"aud": "app-client", "token_use": "id", "client_id": nil})
	if w := call(h, "Bearer "+idToken); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "token type not accepted") {
		t.Errorf("Cognito ID token: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	otherApp := as.Mint(oauthtest.Claims{"aud": nil, "token_use": "access", "client_id": "other-app"})
	if w := call(h, "Bearer "+otherApp); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "token not meant for this resource") {
		t.Errorf("Cognito token of another app client: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	_, err := tokenguard.New(context.Background(), tokenguard.Config{InsecureAllowHTTP: true, Issuers: []tokenguard.TrustedIssuer{{
		Issuer: as.Issuer, JWKSURL: as.JWKSURL(), InsecureSkipAudienceCheck: true, Shape: tokenguard.TokenShape{AllowIDTokenClaims: true},
	}}})
	if err == nil || !strings.Contains(err.Error(), "AllowIDTokenClaims needs the audience check") {
		t.Errorf("AllowIDTokenClaims without the audience check: %v", err)
	}
}

// The shape applies to introspection answers too: panva's oidc-provider
// answers client-credentials introspection without sub; Keycloak's
// answers carry its roles.
func TestTokenShapeOnIntrospection(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	as.RegisterClient(rsID, rsSecret)
	g := newGuard(t, as, tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{{Issuer: as.Issuer, Shape: tokenguard.TokenShape{
			ClientAsSubject: true, ClientIDClaim: "azp", RoleClaims: []string{"realm_access.roles"},
		}}},
		Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
	})
	var p *tokenguard.Principal
	h := g.Require(tokenguard.AnyRole("orders-admin"))(principalHandler(&p))
	tok := as.MintOpaque(oauthtest.Claims{"sub": nil, "client_id": nil, "azp": "worker", "realm_access": map[string]any{"roles": []string{"orders-admin"}}})
	if w := call(h, "Bearer "+tok); w.Code != 200 || p == nil || p.Subject != "worker" || !p.SubjectIsClient || p.ClientID != "worker" {
		t.Fatalf("%d, principal %+v", w.Code, p)
	}
	noRole := as.MintOpaque(nil)
	if w := call(h, "Bearer "+noRole); w.Code != 403 {
		t.Errorf("without the role: %d", w.Code)
	}
}

// Review fixes: an audience claim is one identifier (never split); aud []
// is an audience (empty), not an absent one; a dot inside a claim name is
// written "\."; Keycloak's ID tokens (typ "ID") stay refused; and
// RequireAudience holds with an AudienceClaim on introspection.
func TestTokenShapeEdges(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	as.RegisterClient(rsID, rsSecret)
	entry := tokenguard.TrustedIssuer{Issuer: as.Issuer, Audience: "ours", Shape: tokenguard.TokenShape{
		AudienceClaim: "client_id", AllowIDTokenClaims: true, RoleClaims: []string{`resource_access.orders\.api.roles`},
	}, Introspection: &tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret, RequireAudience: true}}
	g := newGuard(t, as, tokenguard.Config{ResourceMetadataURL: as.ResourceMetadataURL(), Issuers: []tokenguard.TrustedIssuer{entry}})
	var p *tokenguard.Principal
	h := g.Handler(principalHandler(&p))
	const notMeant = "token not meant for this resource"
	for _, tc := range []struct {
		name   string
		token  string
		status int
		desc   string
	}{
		{"client_id with a space", as.Mint(oauthtest.Claims{"aud": nil, "client_id": "other-app ours"}), 401, notMeant},
		{"aud empty array", as.Mint(oauthtest.Claims{"aud": []string{}, "client_id": "ours"}), 401, notMeant},
		{"no aud, client_id ours", as.Mint(oauthtest.Claims{"aud": nil, "client_id": "ours"}), 200, ""},
		{"Keycloak ID token", as.Mint(oauthtest.Claims{"aud": "ours", "typ": "ID", "nonce": "n"}), 401, "token type not accepted"},
		{"opaque, no aud, client_id ours", as.MintOpaque(oauthtest.Claims{"aud": nil, "client_id": "ours"}), 200, ""},
		{"opaque, neither aud nor client_id", as.MintOpaque(oauthtest.Claims{"aud": nil, "client_id": nil}), 401, notMeant},
	} {
		w := call(h, "Bearer "+tc.token)
		want := ""
		if tc.status == 401 {
			want = wantChallenge(g, "invalid_token", tc.desc)
		}
		if w.Code != tc.status || w.Header().Get("WWW-Authenticate") != want {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	tok := as.Mint(oauthtest.Claims{"aud": "ours", "resource_access": map[string]any{"orders.api": map[string]any{"roles": []string{"admin"}}}})
	if w := call(h, "Bearer "+tok); w.Code != 200 || p == nil || !p.HasRole("admin") {
		t.Errorf("role under a client id with a dot: %d %+v", w.Code, p)
	}
}
