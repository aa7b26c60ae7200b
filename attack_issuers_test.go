package tokenguard_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Attacks on a guard that trusts several authorization servers: a server
// (or its tokens) must never get what belongs to another, and an
// introspection answer counts only for the issuer whose endpoint gave it,
// checked against that issuer's audiences.

// principalHandler answers 200 and records the Principal.
func principalHandler(got **tokenguard.Principal) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*got, _ = tokenguard.PrincipalFrom(r.Context())
		w.WriteHeader(http.StatusOK)
	})
}

// expect checks one request's exact answer: 200, or 401 with the exact
// challenge for desc.
func expect(t *testing.T, g *tokenguard.Guard, h http.Handler, what, token string, status int, desc string) {
	t.Helper()
	w := call(h, "Bearer "+token)
	want := ""
	if status == 401 {
		want = wantChallenge(g, "invalid_token", desc)
	}
	if got := w.Header().Get("WWW-Authenticate"); w.Code != status || got != want {
		t.Errorf("%s: %d %q\nwant %d %q", what, w.Code, got, status, want)
	}
}

// The main AS (A) is discovered through RFC 9728 and owns
// Config.Introspection's credentials; a partner (B) is trusted for its own
// JWTs and announces an introspection endpoint of its own. Before issuers
// owned their introspection, B (configured, so first) got A's secret and
// every opaque token, and its active:true for A's issuer was believed.
func TestAttackPartnerGetsNoCredentialOrTokenOfAnother(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	a.RegisterClient(rsID, rsSecret)
	b := newRecordingAS(t, false)
	b.setAnswer(func(_, _ string) map[string]any {
		// B vouches for anything, in A's name.
		return map[string]any{"active": true, "iss": a.Issuer, "aud": a.Resource(), "sub": "mallory", "scope": "admin"}
	})
	var p *tokenguard.Principal
	g := newGuard(t, a, tokenguard.Config{
		Issuers:       []tokenguard.TrustedIssuer{{Issuer: b.issuer(""), Audience: a.Resource()}},
		Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
	})
	h := g.Handler(principalHandler(&p))

	aOpaque, aJWT := a.MintOpaque(oauthtest.Claims{"sub": "alice"}), a.Mint(nil)
	expect(t, g, h, "A's opaque token", aOpaque, 200, "")
	if p == nil || p.Issuer != a.Issuer || p.Subject != "alice" {
		t.Errorf("A's opaque token: principal %+v", p)
	}
	expect(t, g, h, "a made-up opaque token", "made-up-token-that-B-would-vouch-for", 401, "token is not active")
	expect(t, g, h, "A's JWT", aJWT, 200, "")
	expect(t, g, h, "B's JWT", b.mint("", oauthtest.Claims{"aud": a.Resource()}), 200, "")
	if p == nil || p.Issuer != b.issuer("") {
		t.Errorf("B's JWT: principal %+v", p)
	}

	if n := len(b.requests("/introspect")) + len(b.requests("/token")); n != 0 {
		t.Errorf("B got %d introspection or token requests", n)
	}
	if r, ok := b.received(rsSecret, rsID, aOpaque, aJWT, "made-up-token"); ok {
		t.Errorf("B received A's credential or token: %+v", r)
	}
	for _, c := range a.IntrospectionCalls() {
		if c.ClientID != rsID || c.Status != 200 {
			t.Errorf("A's introspection call %+v", c)
		}
	}
}

// Naming A's endpoint by hand with bearer client authentication: the
// client_credentials grant goes to A's token endpoint, from A's metadata,
// never to B's.
func TestAttackBearerClientAuthUsesTheOwnersTokenEndpoint(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	a.RegisterClient(rsID, rsSecret)
	b := newRecordingAS(t, false)
	g := newGuard(t, a, tokenguard.Config{
		Issuers:       []tokenguard.TrustedIssuer{{Issuer: b.issuer(""), Audience: a.Resource()}},
		Introspection: tokenguard.IntrospectionConfig{Endpoint: a.IntrospectionURL(), AuthMethod: "bearer", ClientID: rsID, ClientSecret: rsSecret},
	})
	var p *tokenguard.Principal
	h := g.Handler(principalHandler(&p))
	expect(t, g, h, "A's opaque token", a.MintOpaque(nil), 200, "")
	if a.Requests("token") != 1 {
		t.Errorf("A's token endpoint: %d requests, want 1", a.Requests("token"))
	}
	if r, ok := b.received(rsSecret, rsID); ok || len(b.requests("/token")) != 0 {
		t.Errorf("B's token endpoint got A's credentials: %+v", r)
	}
}

// B introspects too, with its own credentials, for tokens with its prefix:
// its answers are credited to B, refused when they name another issuer or
// another audience, and neither server sees the other's credentials or
// tokens.
func TestAttackAnswerNamingAnotherIssuerIsRefused(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	a.RegisterClient(rsID, rsSecret)
	b := newRecordingAS(t, false)
	const bID, bSecret = "rs-at-b", "b secret"
	b.setAnswer(func(iss, token string) map[string]any {
		switch token {
		case "bt_for_a":
			return map[string]any{"active": true, "iss": a.Issuer, "aud": a.Resource()}
		case "bt_no_iss":
			return map[string]any{"active": true, "aud": a.Resource(), "sub": "bob"}
		case "bt_other_aud":
			return map[string]any{"active": true, "iss": iss, "aud": "api://payments"}
		case "bt_good":
			return map[string]any{"active": true, "iss": iss, "aud": []string{"x", a.Resource()}}
		}
		return nil
	})
	var p *tokenguard.Principal
	g := newGuard(t, a, tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{{
			Issuer: b.issuer(""), Audience: a.Resource(),
			Introspection: &tokenguard.IntrospectionConfig{ClientID: bID, ClientSecret: bSecret, TokenPrefixes: []string{"bt_"}},
		}},
		Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
	})
	h := g.Handler(principalHandler(&p))

	expect(t, g, h, "B's answer in A's name", "bt_for_a", 401, "untrusted issuer")
	expect(t, g, h, "B's answer for another audience", "bt_other_aud", 401, "token not meant for this resource")
	expect(t, g, h, "B's answer without iss", "bt_no_iss", 200, "")
	if p == nil || p.Issuer != b.issuer("") || p.Subject != "bob" {
		t.Errorf("answer without iss: principal %+v, want issuer %s", p, b.issuer(""))
	}
	expect(t, g, h, "B's good answer", "bt_good", 200, "")
	aOpaque := a.MintOpaque(nil)
	expect(t, g, h, "A's opaque token (no prefix)", aOpaque, 200, "")
	if p == nil || p.Issuer != a.Issuer {
		t.Errorf("A's token: principal %+v", p)
	}

	calls := b.requests("/introspect")
	if len(calls) != 4 {
		t.Errorf("B got %d introspection calls, want 4", len(calls))
	}
	for _, c := range calls {
		if c.User != bID || c.Pass != bSecret || !strings.HasPrefix(c.Form.Get("token"), "bt_") {
			t.Errorf("B's introspection call: %+v", c)
		}
	}
	if r, ok := b.received(rsSecret, aOpaque); ok {
		t.Errorf("B received A's credential or token: %+v", r)
	}
	if n := len(a.IntrospectionCalls()); n != 1 {
		t.Errorf("A got %d introspection calls, want 1 (its own token only)", n)
	}
}

// Issuers with their own audiences and no guard-wide one: an opaque token
// the AS issued for another API is refused. Before, introspection answers
// were checked against the guard-wide audience, here none.
func TestAttackOpaqueTokenForAnotherAPI(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	a.RegisterClient(rsID, rsSecret)
	b := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{
			{Issuer: a.Issuer, Audience: "api://orders", Introspection: &tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret}},
			{Issuer: b.Issuer, Audience: "api://orders-b"},
		},
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var p *tokenguard.Principal
	h := g.Handler(principalHandler(&p))
	expect(t, g, h, "opaque, aud api://payments", a.MintOpaque(oauthtest.Claims{"aud": "api://payments"}), 401, "token not meant for this resource")
	expect(t, g, h, "opaque, aud api://orders", a.MintOpaque(oauthtest.Claims{"aud": "api://orders"}), 200, "")
	expect(t, g, h, "opaque, aud B's", a.MintOpaque(oauthtest.Claims{"aud": "api://orders-b"}), 401, "token not meant for this resource")
}

// An AS discovered with resource R and listed with Audience X: X is its
// audience on both paths. Before, opaque tokens for R were accepted and a
// valid X JWT under IssuerIntrospectOn was refused (its answer's aud was
// checked against R).
func TestAttackListedAudienceWinsOnBothPaths(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	a.RegisterClient(rsID, rsSecret)
	g := newGuard(t, a, tokenguard.Config{
		Issuers:       []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "api://x", Introspect: tokenguard.IssuerIntrospectOn}},
		Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
	})
	var p *tokenguard.Principal
	h := g.Handler(principalHandler(&p))
	expect(t, g, h, "opaque, aud R", a.MintOpaque(nil), 401, "token not meant for this resource")
	expect(t, g, h, "opaque, aud X", a.MintOpaque(oauthtest.Claims{"aud": "api://x"}), 200, "")
	a.ResetCounts()
	expect(t, g, h, "JWT, aud X, introspected", a.Mint(oauthtest.Claims{"aud": "api://x"}), 200, "")
	if a.Requests("introspect") != 1 {
		t.Errorf("JWT under IssuerIntrospectOn: %d introspection calls, want 1", a.Requests("introspect"))
	}
	expect(t, g, h, "JWT, aud R", a.Mint(nil), 401, "token not meant for this resource")
}

// A guard-wide InsecureSkipAudienceCheck does not switch off an audience
// an issuer names, on either path.
func TestAttackGlobalAudienceSkipKeepsExplicitAudience(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	b := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	b.RegisterClient(rsID, rsSecret)
	g := newGuard(t, a, tokenguard.Config{
		InsecureSkipAudienceCheck: true,
		Issuers: []tokenguard.TrustedIssuer{{
			Issuer: b.Issuer, Audience: "https://b-api.example",
			Introspection: &tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
		}},
	})
	var p *tokenguard.Principal
	h := g.Handler(principalHandler(&p))
	expect(t, g, h, "A's JWT, any audience (skipped for A)", a.Mint(oauthtest.Claims{"aud": "https://anything.example"}), 200, "")
	expect(t, g, h, "B's JWT, other audience", b.Mint(oauthtest.Claims{"aud": "https://anything.example"}), 401, "token not meant for this resource")
	expect(t, g, h, "B's JWT, B's audience", b.Mint(oauthtest.Claims{"aud": "https://b-api.example"}), 200, "")
	expect(t, g, h, "B's opaque token, other audience", b.MintOpaque(oauthtest.Claims{"aud": "https://anything.example"}), 401, "token not meant for this resource")
	expect(t, g, h, "B's opaque token, B's audience", b.MintOpaque(oauthtest.Claims{"aud": "https://b-api.example"}), 200, "")
}

// Several audiences per issuer: any one will do, on both paths.
func TestIssuerAudiences(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	a.RegisterClient(rsID, rsSecret)
	g := newGuard(t, a, tokenguard.Config{
		Issuers:       []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "api://one", Audiences: []string{"api://two"}}},
		Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
	})
	var p *tokenguard.Principal
	h := g.Handler(principalHandler(&p))
	for _, aud := range []any{"api://one", "api://two", []string{"x", "api://two"}} {
		expect(t, g, h, "JWT", a.Mint(oauthtest.Claims{"aud": aud}), 200, "")
		expect(t, g, h, "opaque", a.MintOpaque(oauthtest.Claims{"aud": aud}), 200, "")
	}
	expect(t, g, h, "JWT, the resource (not listed)", a.Mint(nil), 401, "token not meant for this resource")
	expect(t, g, h, "opaque, the resource (not listed)", a.MintOpaque(nil), 401, "token not meant for this resource")
}

// RouteOpaque sends each opaque token to the issuer it names and nowhere
// else; "" or a name that is not a trusted issuer that introspects
// refuses the token without a call. The answer cache is per issuer: an
// inactive answer of one issuer is not taken for another's.
func TestRouteOpaque(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	a.RegisterClient(rsID, rsSecret)
	b := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	b.RegisterClient("rs-b", "secret-b")
	var route atomic.Value
	route.Store("")
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{
			{Issuer: a.Issuer, Audience: "api://orders", Introspection: &tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret}},
			{Issuer: b.Issuer, Audience: "api://orders", Introspection: &tokenguard.IntrospectionConfig{ClientID: "rs-b", ClientSecret: "secret-b"}},
		},
		RouteOpaque:       func(string) string { return route.Load().(string) },
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var p *tokenguard.Principal
	h := g.Handler(principalHandler(&p))
	bTok := b.MintOpaque(oauthtest.Claims{"aud": "api://orders"})

	for _, r := range []string{"", "https://untrusted.example", a.Issuer + "/"} {
		route.Store(r)
		expect(t, g, h, "route "+r, bTok, 401, "token not recognised")
	}
	if a.Requests("introspect")+b.Requests("introspect") != 0 {
		t.Errorf("unrouted tokens made %d calls", a.Requests("introspect")+b.Requests("introspect"))
	}
	route.Store(a.Issuer)
	expect(t, g, h, "B's token routed to A", bTok, 401, "token is not active")
	route.Store(b.Issuer)
	expect(t, g, h, "B's token routed to B", bTok, 200, "")
	if p == nil || p.Issuer != b.Issuer {
		t.Errorf("principal %+v", p)
	}
	if a.Requests("introspect") != 1 || b.Requests("introspect") != 1 {
		t.Errorf("calls: A %d, B %d; want 1 each", a.Requests("introspect"), b.Requests("introspect"))
	}
}

// Pattern (per-tenant) issuers introspect at each tenant's own endpoint,
// from its own metadata: an answer naming the tenant works, one naming
// another tenant does not, and a tenant's JWTs are introspected there.
func TestPatternIssuerIntrospection(t *testing.T) {
	ts := newRecordingAS(t, true)
	ts.setAnswer(func(iss, token string) map[string]any {
		switch token {
		case "acme_good":
			return map[string]any{"active": true, "iss": iss, "aud": "https://api.example", "sub": "wile"}
		case "acme_other_tenant":
			return map[string]any{"active": true, "iss": ts.issuer("globex"), "aud": "https://api.example"}
		}
		if strings.HasPrefix(token, "ey") {
			return map[string]any{"active": true, "iss": iss, "aud": "https://api.example"}
		}
		return nil
	})
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{{
			Issuer: ts.issuer("*"), Audience: "https://api.example", Introspect: tokenguard.IssuerIntrospectOn,
			Introspection: &tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "tenant secret"},
		}},
		RouteOpaque: func(token string) string {
			tenant, _, _ := strings.Cut(token, "_")
			return ts.issuer(tenant)
		},
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var p *tokenguard.Principal
	h := g.Handler(principalHandler(&p))
	expect(t, g, h, "tenant's opaque token", "acme_good", 200, "")
	if p == nil || p.Issuer != ts.issuer("acme") || p.Subject != "wile" {
		t.Errorf("principal %+v", p)
	}
	expect(t, g, h, "answer naming another tenant", "acme_other_tenant", 401, "untrusted issuer")
	expect(t, g, h, "tenant's JWT, introspected", ts.mint("initech", oauthtest.Claims{"aud": "https://api.example"}), 200, "")
	var paths []string
	for _, r := range ts.requests("/introspect") {
		paths = append(paths, r.Path)
		if r.User != "rs" || r.Pass != "tenant secret" {
			t.Errorf("credentials %q/%q", r.User, r.Pass)
		}
	}
	if want := "/t/acme/introspect /t/acme/introspect /t/initech/introspect"; strings.Join(paths, " ") != want {
		t.Errorf("introspection calls %q, want %q", paths, want)
	}
}

// RFC 9701: an issuer's answers are asked for as JWTs and verified with
// that issuer's key set; a plain answer, or one signed by another server,
// is refused (503: the answer says nothing about the token).
func TestSignedIntrospectionResponses(t *testing.T) {
	a := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	a.RegisterClient(rsID, rsSecret)
	b := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	g := newGuard(t, a, tokenguard.Config{
		Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret, SignedResponses: true},
	})
	var p *tokenguard.Principal
	h := g.Handler(principalHandler(&p))
	expect(t, g, h, "signed answer", a.MintOpaque(oauthtest.Claims{"sub": "sig"}), 200, "")
	if p == nil || p.Subject != "sig" || p.Issuer != a.Issuer {
		t.Errorf("principal %+v", p)
	}
	forged := b.MintWith(oauthtest.MintOptions{
		Header: map[string]any{"typ": "token-introspection+jwt", "kid": a.KeyIDs()[0]},
		Claims: oauthtest.Claims{"iss": a.Issuer, "aud": rsID, "token_introspection": map[string]any{"active": true}},
	})
	for name, f := range map[string]*oauthtest.Fault{
		"plain JSON":         {Status: 200, Body: `{"active":true}`, ContentType: "application/json"},
		"signed by B as A's": {Status: 200, Body: forged, ContentType: "application/token-introspection+jwt"},
	} {
		a.SetFault("introspect", f)
		if w := call(h, "Bearer "+a.MintOpaque(nil)); w.Code != 503 {
			t.Errorf("%s: %d %s", name, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	a.SetFault("introspect", nil)
}

// New refuses every configuration in which a credential, a token or an
// audience could go to the wrong issuer, naming the fields that fix it.
func TestNewRefusesUnsafeIssuerConfigs(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	b := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	own := func(prefixes ...string) *tokenguard.IntrospectionConfig {
		return &tokenguard.IntrospectionConfig{ClientID: "id", ClientSecret: "s", TokenPrefixes: prefixes}
	}
	creds := tokenguard.IntrospectionConfig{ClientID: "id", ClientSecret: "s"}
	for _, tc := range []struct {
		name string
		cfg  tokenguard.Config
		want []string
	}{
		{"duplicate issuer entry", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x"}, {Issuer: a.Issuer, Audience: "y"}}},
			[]string{a.Issuer, "listed twice"}},
		{"guard credentials, two configured issuers", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x"}, {Issuer: b.Issuer, Audience: "x"}}, Introspection: creds},
			[]string{"any of 2 trusted issuers", a.Issuer, b.Issuer, "TrustedIssuer.Introspection"}},
		{"guard credentials, left over when another has its own", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspection: own("ory_at_")}, {Issuer: b.Issuer, Audience: "x"}}, Introspection: creds},
			[]string{"any of 2 trusted issuers", "TrustedIssuer.Introspection"}},
		{"guard credentials, the owner has its own", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspection: own()}}, Introspection: creds},
			[]string{"has a TrustedIssuer.Introspection of its own", "keep one"}},
		{"guard credentials, primary issuer's entry has its own", tokenguard.Config{Issuer: a.Issuer, Audience: "x", Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Introspection: own()}, {Issuer: b.Issuer}}, Introspection: creds},
			[]string{"credentials for issuer " + a.Issuer, "keep one"}},
		{"JWT policy, nothing introspects", tokenguard.Config{Issuer: a.Issuer, Audience: "x", Introspection: tokenguard.IntrospectionConfig{JWTs: tokenguard.IntrospectJWTAlways}},
			[]string{"Config.Introspection.JWTs is set, but no issuer introspects"}},
		{"IntrospectJWTAlways, an issuer that cannot", tokenguard.Config{Issuer: a.Issuer, Audience: "x", Issuers: []tokenguard.TrustedIssuer{{Issuer: b.Issuer}}, Introspection: tokenguard.IntrospectionConfig{ClientID: "id", ClientSecret: "s", JWTs: tokenguard.IntrospectJWTAlways}},
			[]string{"cannot cover issuer " + b.Issuer, "IssuerIntrospectOff"}},
		{"RouteOpaque, nothing introspects", tokenguard.Config{Issuer: a.Issuer, Audience: "x", RouteOpaque: func(string) string { return "" }},
			[]string{"RouteOpaque is set, but no issuer introspects"}},
		{"pattern introspection that nothing reaches", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.URL + "/t/*", Audience: "x", Introspection: own()}}},
			[]string{"no opaque token can reach a tenant", "Config.RouteOpaque"}},
		{"host-label pattern with a secret", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: "https://*.corp.example", Audience: "x", Introspect: tokenguard.IssuerIntrospectOn, Introspection: own()}}},
			[]string{"in the host", "fixed Introspection.Endpoint"}},
		{"one prefix, two issuers", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspection: own("at_")}, {Issuer: b.Issuer, Audience: "x", Introspection: own("at_")}}},
			[]string{`"at_" is claimed by issuers`}},
		{"host-label pattern, bearer without a fixed token endpoint", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: "https://*.corp.example", Audience: "x", Introspect: tokenguard.IssuerIntrospectOn,
			Introspection: &tokenguard.IntrospectionConfig{Endpoint: "https://as.corp.example/introspect", AuthMethod: "bearer", ClientID: "id", ClientSecret: "s"}}}},
			[]string{"fixed Introspection.TokenEndpoint"}},
		{"signed answers without a client id", tokenguard.Config{Issuer: a.Issuer, Audience: "x", Introspection: tokenguard.IntrospectionConfig{BearerToken: "static", SignedResponses: true}},
			[]string{"SignedResponses needs ClientID"}},
		{"short prefix", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspection: own("b_")}}},
			[]string{`"b_" is shorter than 3`}},
		{"guard token endpoint without credentials", tokenguard.Config{Issuer: a.Issuer, Audience: "x", Introspection: tokenguard.IntrospectionConfig{TokenEndpoint: a.TokenURL()}},
			[]string{"Config.Introspection sets TokenEndpoint"}},
		{"two introspect, no route", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspection: own()}, {Issuer: b.Issuer, Audience: "x", Introspection: own()}}},
			[]string{"2 issuers introspect without TokenPrefixes", "TokenPrefixes", "Config.RouteOpaque"}},
		{"overlapping prefixes", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspection: own("at_")}, {Issuer: b.Issuer, Audience: "x", Introspection: own("at_b")}}},
			[]string{"overlap", `"at_"`, `"at_b"`}},
		{"prefixes and RouteOpaque", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspection: own("at_")}}, RouteOpaque: func(string) string { return "" }},
			[]string{"RouteOpaque or TokenPrefixes, not both"}},
		{"prefix on a pattern", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.URL + "/t/*", Audience: "x", Introspection: own("ten_")}}},
			[]string{"pattern", "Config.RouteOpaque"}},
		{"issuer audience and skip", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", InsecureSkipAudienceCheck: true}}},
			[]string{"InsecureSkipAudienceCheck and Audience(s) both set"}},
		{"guard audience and skip", tokenguard.Config{Issuer: a.Issuer, Audience: "x", InsecureSkipAudienceCheck: true},
			[]string{"Config.Audience and InsecureSkipAudienceCheck"}},
		{"introspecting issuer without audience", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Introspection: own()}}},
			[]string{"no audience", "TrustedIssuer.Audience", "Config.Audience"}},
		{"Introspect on, issuer does not introspect", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspect: tokenguard.IssuerIntrospectOn}}},
			[]string{"Introspect is on", "TrustedIssuer.Introspection"}},
		{"per-issuer cache capacity", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspection: &tokenguard.IntrospectionConfig{ClientID: "id", ClientSecret: "s", CacheCapacity: 5}}}},
			[]string{"CacheCapacity is guard-wide"}},
		{"per-issuer unknown-issuer policy", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspection: &tokenguard.IntrospectionConfig{ClientID: "id", ClientSecret: "s", JWTs: tokenguard.IntrospectJWTUnknownIssuer}}}},
			[]string{"IntrospectJWTUnknownIssuer is guard-wide"}},
		{"per-issuer introspection without credentials", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Audience: "x", Introspection: &tokenguard.IntrospectionConfig{Endpoint: a.IntrospectionURL()}}}},
			[]string{"sets no ClientID, BearerToken or AuthMethod"}},
		{"guard endpoint without credentials", tokenguard.Config{Issuer: a.Issuer, Audience: "x", Introspection: tokenguard.IntrospectionConfig{Endpoint: a.IntrospectionURL()}},
			[]string{"Config.Introspection sets Endpoint", "ClientID"}},
		{"signed answers without a key set", tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: a.Issuer, JWKSURL: a.JWKSURL(), Audience: "x", Introspection: &tokenguard.IntrospectionConfig{Endpoint: a.IntrospectionURL(), ClientID: "id", ClientSecret: "s", SignedResponses: true}}}},
			nil}, // has a key set: accepted
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.InsecureAllowHTTP = true
			g, err := tokenguard.New(context.Background(), cfg)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				g.Close()
				return
			}
			if err == nil {
				g.Close()
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// A JWT-shaped token never takes the opaque route: one the strict parser
// refuses goes only to the issuer its iss names, if that one introspects.
// Before, A's JWT with a claim the parser refuses went to B, the only
// issuer that introspects.
func TestAttackUnparseableJWTGoesOnlyToItsIssuer(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	b := newRecordingAS(t, false)
	g := newGuard(t, a, tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{{Issuer: b.issuer(""), Audience: a.Resource(),
			Introspection: &tokenguard.IntrospectionConfig{ClientID: "rs-b", ClientSecret: "b"}}},
		Introspection: tokenguard.IntrospectionConfig{JWTs: tokenguard.IntrospectJWTUnknownIssuer},
	})
	var p *tokenguard.Principal
	h := g.Handler(principalHandler(&p))
	aDeep := a.Mint(oauthtest.Claims{"deep": deepJSON(100)})
	expect(t, g, h, "A's unparseable JWT", aDeep, 401, "malformed token")
	expect(t, g, h, "unparseable JWT naming nobody", "eyJhbGciOg.e30.c2ln", 401, "malformed token")
	if r, ok := b.received(aDeep, "eyJhbGciOg"); ok {
		t.Errorf("B was sent another issuer's token: %+v", r)
	}
	bClaims := oauthtest.Claims{"iss": b.issuer(""), "aud": a.Resource()}
	bOdd := b.keys.MintWith(oauthtest.MintOptions{Header: map[string]any{"typ": 5}, Claims: bClaims})
	b.remember(bOdd, bClaims)
	expect(t, g, h, "B's unparseable JWT, at B", bOdd, 200, "")
	if n := len(b.requests("/introspect")); n != 1 {
		t.Errorf("B got %d calls, want 1", n)
	}
}

// RFC 9701 answers are held to the issuer's algorithm allow-list, like
// its access tokens.
func TestSignedIntrospectionResponseAlgorithms(t *testing.T) {
	a := newAS(t, oauthtest.Options{Algorithms: []string{"RS256", "ES256"}}) // answers are signed RS256
	a.RegisterClient(rsID, rsSecret)
	g := newGuard(t, a, tokenguard.Config{
		Issuers:       []tokenguard.TrustedIssuer{{Issuer: a.Issuer, Algorithms: []string{"ES256"}}},
		Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret, SignedResponses: true},
	})
	if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+a.MintOpaque(nil)); w.Code != 503 {
		t.Errorf("answer signed RS256 for an ES256-only issuer: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

// An issuer the resource metadata names twice is trusted once: one key
// set, one refresh loop.
func TestRepeatedAuthorizationServer(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	b := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
	rs := httptestJSON(t, func(url string) any {
		return map[string]any{"resource": url, "authorization_servers": []string{a.Issuer, b.Issuer, a.Issuer}}
	})
	a.ResetCounts()
	g := newGuard(t, a, tokenguard.Config{ResourceMetadataURL: rs.URL + "/.well-known/oauth-protected-resource"})
	if got := g.Issuers(); len(got) != 2 {
		t.Errorf("issuers %v", got)
	}
	if n := a.Requests("jwks"); n != 1 {
		t.Errorf("A's key set fetched %d times, want 1", n)
	}
}

// RouteOpaque: a tenant of a pattern that does not introspect is refused
// before any discovery, and whatever the hook returns never reaches the
// log unless it is a trusted issuer.
func TestRouteOpaqueRefusesWithoutDiscoveryOrLeak(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	a.RegisterClient(rsID, rsSecret)
	ts := newRecordingAS(t, true)
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	var route atomic.Value
	g := newGuard(t, a, tokenguard.Config{
		Issuers:       []tokenguard.TrustedIssuer{{Issuer: ts.issuer("*"), Audience: "api://t"}},
		Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
		RouteOpaque:   func(token string) string { return route.Load().(func(string) string)(token) },
		Logger:        logger,
	})
	h := g.Handler(http.NotFoundHandler())
	route.Store(func(string) string { return ts.issuer("acme") })
	expect(t, g, h, "tenant of a pattern that does not introspect", "some-opaque-token", 401, "token not recognised")
	if n := len(ts.requests("")); n != 0 {
		t.Errorf("%d requests to the tenant server", n)
	}
	const secret = "secret-opaque-token-value"
	route.Store(func(token string) string { return token })
	expect(t, g, h, "hook returns the token", secret, 401, "token not recognised")
	route.Store(func(string) string { return a.Issuer })
	expect(t, g, h, "routed to A", a.MintOpaque(nil), 404, "")
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(buf.String(), secret) {
		t.Errorf("the token reached the log:\n%s", buf.String())
	}
}

// A pattern whose tenants all use one fixed endpoint shares one
// concurrency bound across them: adding tenants does not add calls in
// flight to that server.
func TestPatternTenantsShareAFixedEndpointsLimits(t *testing.T) {
	ts := newRecordingAS(t, true)
	release := make(chan struct{})
	ts.setAnswer(func(iss, token string) map[string]any {
		<-release
		return map[string]any{"active": true, "aud": "api://t"}
	})
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{{Issuer: ts.issuer("*"), Audience: "api://t",
			Introspection: &tokenguard.IntrospectionConfig{Endpoint: ts.issuer("shared") + "/introspect", ClientID: "rs", ClientSecret: "s", MaxConcurrent: 1}}},
		RouteOpaque: func(token string) string {
			tenant, _, _ := strings.Cut(token, "_")
			return ts.issuer(tenant)
		},
		FetchTimeout:      2 * time.Second,
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	h := g.Handler(http.NotFoundHandler())
	first := make(chan int)
	go func() { first <- call(h, "Bearer acme_one").Code }()
	for len(ts.requests("/introspect")) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if w := call(h, "Bearer globex_two"); w.Code != 503 {
		t.Errorf("second tenant while the slot is taken: %d", w.Code)
	}
	close(release)
	if code := <-first; code != 404 {
		t.Errorf("first tenant: %d", code)
	}
}

// Tenants whose endpoints come from their own metadata do not share
// bounds: one tenant's server asking to back off (or a tenant an attacker
// controls) does not hold the others back.
func TestPatternTenantLimitsArePerEndpoint(t *testing.T) {
	ts := newRecordingAS(t, true)
	ts.setAnswer(func(iss, token string) map[string]any {
		if iss == ts.issuer("evil") {
			return map[string]any{"_status": 429, "_retry_after": "300"}
		}
		return map[string]any{"active": true, "aud": "api://t"}
	})
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{{Issuer: ts.issuer("*"), Audience: "api://t",
			Introspection: &tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"}}},
		RouteOpaque: func(token string) string {
			tenant, _, _ := strings.Cut(token, "_")
			return ts.issuer(tenant)
		},
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	h := g.Handler(http.NotFoundHandler())
	if w := call(h, "Bearer evil_one"); w.Code != 503 || w.Header().Get("Retry-After") != "300" {
		t.Fatalf("evil tenant: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := call(h, "Bearer good_one"); w.Code != 404 {
		t.Errorf("good tenant after evil's 429: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := call(h, "Bearer evil_two"); w.Code != 503 || len(ts.requests("/t/evil/introspect")) != 1 {
		t.Errorf("evil tenant held back: %d, %d calls", w.Code, len(ts.requests("/t/evil/introspect")))
	}
}

// Bearer client authentication with a token endpoint named by hand, for
// an issuer without metadata (JWKSURL given).
func TestBearerClientAuthWithoutMetadata(t *testing.T) {
	a := newAS(t, oauthtest.Options{})
	a.RegisterClient(rsID, rsSecret)
	g := newGuard(t, a, tokenguard.Config{
		Issuer: a.Issuer, JWKSURL: a.JWKSURL(), Audience: a.Resource(),
		Introspection: tokenguard.IntrospectionConfig{Endpoint: a.IntrospectionURL(), AuthMethod: "bearer", TokenEndpoint: a.TokenURL(), ClientID: rsID, ClientSecret: rsSecret},
	})
	if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+a.MintOpaque(nil)); w.Code != 404 || a.Requests("token") != 1 {
		t.Errorf("%d, %d token requests", w.Code, a.Requests("token"))
	}
}

// A tenant whose own metadata does not fit the pattern's policy (it
// announces no introspection endpoint) is refused with 401 and cached as
// such: a request naming it, forged or not, does not rediscover it.
func TestPatternTenantThatCannotIntrospectIsCachedAsRefused(t *testing.T) {
	ts := newTenantServer(t) // metadata without introspection_endpoint
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{{Issuer: ts.URL + "/t/*", Audience: "https://api.example", Introspect: tokenguard.IssuerIntrospectOn,
			Introspection: &tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"}}},
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	h := g.Handler(http.NotFoundHandler())
	const want = `Bearer error="invalid_token", error_description="untrusted issuer"`
	for i := range 3 {
		if w := call(h, "Bearer "+ts.token("acme")); w.Code != 401 || w.Header().Get("WWW-Authenticate") != want {
			t.Errorf("request %d: %d %s", i, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	if n := ts.discovery.Load(); n != 1 {
		t.Errorf("%d discoveries, want 1", n)
	}
}

// An unparseable JWT naming a tenant whose server is down gets 503, as a
// parseable one does: the client keeps a token that may well be good.
func TestUnparseableJWTOfAnUnreachableTenantIs503(t *testing.T) {
	down := newRecordingAS(t, true)
	down.Close()
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuers: []tokenguard.TrustedIssuer{{Issuer: down.issuer("*"), Audience: "api://t",
			Introspection: &tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"}}},
		Introspection:     tokenguard.IntrospectionConfig{JWTs: tokenguard.IntrospectJWTUnknownIssuer},
		InsecureAllowHTTP: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	tok := down.keys.Mint(oauthtest.Claims{"iss": down.issuer("acme"), "aud": "api://t", "deep": deepJSON(100)})
	if w := call(g.Handler(http.NotFoundHandler()), "Bearer "+tok); w.Code != 503 {
		t.Errorf("%d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

// RequireAudience: a server that issues tokens without an audience unless
// asked (fosite, oidc-provider) would otherwise hand out tokens good at
// every resource server; with it, an answer without aud is refused.
func TestIntrospectionRequireAudience(t *testing.T) {
	for _, require := range []bool{false, true} {
		as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{RequireAudience: require}, tokenguard.Config{})
		h := g.Handler(http.NotFoundHandler())
		w := call(h, "Bearer "+as.MintOpaque(oauthtest.Claims{"aud": nil}))
		switch {
		case !require && w.Code != 404:
			t.Errorf("no aud, not required: %d", w.Code)
		case require && (w.Code != 401 || w.Header().Get("WWW-Authenticate") != wantChallenge(g, "invalid_token", "token not meant for this resource")):
			t.Errorf("no aud, required: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
		}
		if w := call(h, "Bearer "+as.MintOpaque(nil)); w.Code != 404 {
			t.Errorf("with the right aud (required %v): %d", require, w.Code)
		}
	}
}

// A JWT without a scope claim (zitadel's op) gets, when its issuer
// introspects JWTs, the scopes the answer states; a JWT with scopes keeps
// its own.
func TestJWTScopesFromIntrospection(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	as.RegisterClient(rsID, rsSecret)
	g := newGuard(t, as, tokenguard.Config{
		Issuers:       []tokenguard.TrustedIssuer{{Issuer: as.Issuer, Introspect: tokenguard.IssuerIntrospectOn}},
		Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
	})
	h := g.RequireScopes("orders:read")(http.NotFoundHandler())
	// oauthtest answers a JWT's introspection with its claims, so the
	// first two see the same scopes on both sides; the third's answer
	// (a replaced response) states a scope the JWT does not carry.
	noScope := as.Mint(nil)
	if w := call(h, "Bearer "+noScope); w.Code != 403 {
		t.Errorf("no scope anywhere: %d", w.Code)
	}
	withScope := as.Mint(oauthtest.Claims{"scope": "orders:read"})
	if w := call(h, "Bearer "+withScope); w.Code != 404 {
		t.Errorf("scope in the JWT: %d", w.Code)
	}
	as.SetFault("introspect", &oauthtest.Fault{Status: 200, Body: `{"active":true,"scope":"orders:read","aud":"` + as.Resource() + `"}`})
	if w := call(h, "Bearer "+as.Mint(oauthtest.Claims{"jti": "fresh"})); w.Code != 404 {
		t.Errorf("no scope in the JWT, orders:read in the answer: %d %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}
