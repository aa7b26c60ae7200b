package tokenguard_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

func TestRequirements(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	perms := newGuard(t, as, tokenguard.Config{ScopeClaim: "permissions"})
	scopeDenied := func(g *tokenguard.Guard, scopes string) string {
		return `Bearer realm="` + g.Resource() + `", error="insufficient_scope", error_description="token lacks a required scope", scope="` + scopes + `", resource_metadata="` + g.ResourceMetadataURL() + `"`
	}
	ruleDenied := func(g *tokenguard.Guard) string {
		return `Bearer realm="` + g.Resource() + `", error="insufficient_scope", error_description="token does not meet this route's requirements", resource_metadata="` + g.ResourceMetadataURL() + `"`
	}
	for _, tc := range []struct {
		name      string
		g         *tokenguard.Guard
		reqs      []tokenguard.Requirement
		claims    oauthtest.Claims
		status    int
		challenge string
	}{
		{"all-of, all granted", g, []tokenguard.Requirement{tokenguard.AllScopes("a", "b")}, oauthtest.Claims{"scope": "b a c"}, 200, ""},
		{"all-of, one missing", g, []tokenguard.Requirement{tokenguard.AllScopes("a", "b")}, oauthtest.Claims{"scope": "a"}, 403, scopeDenied(g, "a b")},
		{"any-of, one granted", g, []tokenguard.Requirement{tokenguard.AnyScope("a", "b")}, oauthtest.Claims{"scope": "b"}, 200, ""},
		{"any-of, none granted", g, []tokenguard.Requirement{tokenguard.AnyScope("a", "b")}, oauthtest.Claims{"scope": "c"}, 403, scopeDenied(g, "a b")},
		{"scp array", g, []tokenguard.Requirement{tokenguard.AllScopes("a")}, oauthtest.Claims{"scp": []string{"a"}}, 200, ""},
		{"custom claim, array", perms, []tokenguard.Requirement{tokenguard.AllScopes("orders:read")}, oauthtest.Claims{"permissions": []string{"orders:read"}}, 200, ""},
		{"custom claim, string", perms, []tokenguard.Requirement{tokenguard.AllScopes("orders:read")}, oauthtest.Claims{"permissions": "x orders:read"}, 200, ""},
		{"custom claim ignores scope", perms, []tokenguard.Requirement{tokenguard.AllScopes("orders:read")}, oauthtest.Claims{"scope": "orders:read"}, 403, scopeDenied(perms, "orders:read")},
		{"claim equals", g, []tokenguard.Requirement{tokenguard.ClaimIs("tenant", "acme")}, oauthtest.Claims{"tenant": "acme"}, 200, ""},
		{"claim array holds", g, []tokenguard.Requirement{tokenguard.ClaimIs("groups", "admins")}, oauthtest.Claims{"groups": []string{"users", "admins"}}, 200, ""},
		{"claim differs", g, []tokenguard.Requirement{tokenguard.ClaimIs("tenant", "acme")}, oauthtest.Claims{"tenant": "evil"}, 403, ruleDenied(g)},
		{"claim absent", g, []tokenguard.Requirement{tokenguard.ClaimIs("tenant", "acme")}, oauthtest.Claims{}, 403, ruleDenied(g)},
		{"predicate true", g, []tokenguard.Requirement{tokenguard.Satisfies("sub is alice", func(p *tokenguard.Principal) bool { return p.Subject == "alice" })}, oauthtest.Claims{"sub": "alice"}, 200, ""},
		{"predicate false", g, []tokenguard.Requirement{tokenguard.Satisfies("sub is alice", func(p *tokenguard.Principal) bool { return p.Subject == "alice" })}, oauthtest.Claims{"sub": "bob"}, 403, ruleDenied(g)},
		{"zero requirement fails closed", g, []tokenguard.Requirement{{}}, oauthtest.Claims{}, 403, ruleDenied(g)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rc reached
			w := call(tc.g.Require(tc.reqs...)(rc.handler()), "Bearer "+as.Mint(tc.claims))
			if w.Code != tc.status || rc.called != (tc.status == 200) {
				t.Fatalf("status %d, reached %v", w.Code, rc.called)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, tc.challenge)
			}
		})
	}
}

// A group rule and a route rule both apply, after authentication.
func TestRequirementsCompose(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	var rc reached
	group := g.Require(tokenguard.ClaimIs("tenant", "acme"))
	route := g.RequireScopes("orders:write")
	h := g.Handler(group(route(rc.handler())))
	for _, tc := range []struct {
		name   string
		claims oauthtest.Claims
		status int
	}{
		{"both met", oauthtest.Claims{"tenant": "acme", "scope": "orders:write"}, 200},
		{"group rule fails", oauthtest.Claims{"tenant": "other", "scope": "orders:write"}, 403},
		{"route rule fails", oauthtest.Claims{"tenant": "acme", "scope": "orders:read"}, 403},
	} {
		rc = reached{}
		if w := call(h, "Bearer "+as.Mint(tc.claims)); w.Code != tc.status || rc.called != (tc.status == 200) {
			t.Errorf("%s: %d, reached %v", tc.name, w.Code, rc.called)
		}
	}
	rc = reached{}
	if w := call(h, ""); w.Code != 401 || rc.called {
		t.Errorf("no token: %d", w.Code)
	}
	// Requirements alone still authenticate: rules never replace it.
	rc = reached{}
	if w := call(group(route(rc.handler())), "Bearer "+as.Mint(oauthtest.Claims{"tenant": "acme", "scope": "orders:write", "aud": "https://other"})); w.Code != 401 || rc.called {
		t.Errorf("wrong-audience token through rules alone: %d", w.Code)
	}
}

// With ScopeClaim, Principal.Scopes is that claim, for JWTs and opaque
// tokens alike, so HasScope, the requirements and adapters built on
// Principal.Scopes (MCP's TokenInfo) all see the same scopes.
func TestScopeClaimIsPrincipalScopes(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{ScopeClaim: "permissions"})
	for _, tc := range []struct {
		name   string
		claims oauthtest.Claims
		want   string
	}{
		{"array", oauthtest.Claims{"permissions": []string{"orders:read", "orders:read", "admin"}, "scope": "other"}, "orders:read admin"},
		{"string", oauthtest.Claims{"permissions": "orders:read  admin", "scp": []string{"other"}}, "orders:read admin"},
		{"absent: scope is not read", oauthtest.Claims{"scope": "orders:read"}, ""},
		{"array with a non-string grants none", oauthtest.Claims{"permissions": []any{"orders:read", 7}}, ""},
		{"object grants none", oauthtest.Claims{"permissions": map[string]any{"orders:read": true}}, ""},
	} {
		for _, kind := range []string{"jwt", "opaque"} {
			tok := as.Mint(tc.claims)
			if kind == "opaque" {
				tok = as.MintOpaque(tc.claims)
			}
			var rc reached
			if w := call(g.Handler(rc.handler()), "Bearer "+tok); w.Code != 200 {
				t.Fatalf("%s, %s: status %d", tc.name, kind, w.Code)
			}
			p := rc.principal
			if got := strings.Join(p.Scopes, " "); got != tc.want {
				t.Errorf("%s, %s: Scopes %q, want %q", tc.name, kind, got, tc.want)
			}
			if p.HasScope("other") {
				t.Errorf("%s, %s: HasScope(other) from scope/scp despite ScopeClaim", tc.name, kind)
			}
			w := call(g.Handler(g.RequireScopes("orders:read")(http.NotFoundHandler())), "Bearer "+tok)
			if want := map[bool]int{true: 404, false: 403}[strings.Contains(tc.want, "orders:read")]; w.Code != want {
				t.Errorf("%s, %s: RequireScopes(orders:read) %d, want %d", tc.name, kind, w.Code, want)
			}
		}
	}
}
