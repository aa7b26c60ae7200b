package tokenguard_test

import (
	"context"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// matrixSetup is one shape of trust: a guard, and the issuer under test's
// way of minting tokens for an audience (nil: no aud) and of counting the
// introspection calls it got.
type matrixSetup struct {
	g          *tokenguard.Guard
	right      string // the audience this issuer's tokens must carry here
	mintJWT    func(aud any) string
	mintOpaque func(aud any) string
	calls      func() int
}

// Every shape of trust × every path × every audience, each with its exact
// answer: the audience is always that of the issuer that vouches, on the
// JWT path and on the introspection path alike.
func TestIssuerAudienceMatrix(t *testing.T) {
	shapes := []struct {
		name  string
		build func(t *testing.T, introspectJWTs bool) matrixSetup
	}{
		{"one issuer", func(t *testing.T, on bool) matrixSetup {
			a := newAS(t, oauthtest.Options{})
			a.RegisterClient(rsID, rsSecret)
			ic := tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret}
			if on {
				ic.JWTs = tokenguard.IntrospectJWTAlways
			}
			g := newGuard(t, a, tokenguard.Config{Introspection: ic})
			return matrixSetup{g: g, right: a.Resource(),
				mintJWT:    func(aud any) string { return a.Mint(oauthtest.Claims{"aud": aud}) },
				mintOpaque: func(aud any) string { return a.MintOpaque(oauthtest.Claims{"aud": aud}) },
				calls:      func() int { return a.Requests("introspect") }}
		}},
		{"discovered + configured", func(t *testing.T, on bool) matrixSetup {
			// A is discovered (resource R) and listed with its own audience;
			// partner B is trusted for its JWTs.
			a := newAS(t, oauthtest.Options{})
			a.RegisterClient(rsID, rsSecret)
			b := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}})
			entry := tokenguard.TrustedIssuer{Issuer: a.Issuer, Audience: "api://x"}
			if on {
				entry.Introspect = tokenguard.IssuerIntrospectOn
			}
			g := newGuard(t, a, tokenguard.Config{
				Issuers:       []tokenguard.TrustedIssuer{entry, {Issuer: b.Issuer, Audience: "api://b"}},
				Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
			})
			return matrixSetup{g: g, right: "api://x",
				mintJWT:    func(aud any) string { return a.Mint(oauthtest.Claims{"aud": aud}) },
				mintOpaque: func(aud any) string { return a.MintOpaque(oauthtest.Claims{"aud": aud}) },
				calls:      func() int { return a.Requests("introspect") }}
		}},
		{"two configured", func(t *testing.T, on bool) matrixSetup {
			// Both introspect with their own credentials; B's opaque
			// tokens carry its prefix. The issuer under test is B.
			a := newAS(t, oauthtest.Options{})
			a.RegisterClient(rsID, rsSecret)
			b := newAS(t, oauthtest.Options{Algorithms: []string{"ES256"}, OpaqueTokenPrefix: "bt_"})
			b.RegisterClient("rs-b", "secret-b")
			entry := tokenguard.TrustedIssuer{Issuer: b.Issuer, Audience: "api://b",
				Introspection: &tokenguard.IntrospectionConfig{ClientID: "rs-b", ClientSecret: "secret-b", TokenPrefixes: []string{"bt_"}}}
			if on {
				entry.Introspect = tokenguard.IssuerIntrospectOn
			}
			g, err := tokenguard.New(context.Background(), tokenguard.Config{
				Issuers: []tokenguard.TrustedIssuer{
					{Issuer: a.Issuer, Audience: "api://a", Introspection: &tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret}},
					entry,
				},
				InsecureAllowHTTP: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			return matrixSetup{g: g, right: "api://b",
				mintJWT:    func(aud any) string { return b.Mint(oauthtest.Claims{"aud": aud}) },
				mintOpaque: func(aud any) string { return b.MintOpaque(oauthtest.Claims{"aud": aud}) },
				calls:      func() int { return b.Requests("introspect") + a.Requests("introspect") }}
		}},
		{"pattern tenants", func(t *testing.T, on bool) matrixSetup {
			ts := newRecordingAS(t, true)
			entry := tokenguard.TrustedIssuer{Issuer: ts.issuer("*"), Audience: "api://t",
				Introspection: &tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"}}
			if on {
				entry.Introspect = tokenguard.IssuerIntrospectOn
			}
			g, err := tokenguard.New(context.Background(), tokenguard.Config{
				Issuers: []tokenguard.TrustedIssuer{entry},
				RouteOpaque: func(token string) string {
					if len(token) > 5 && token[:5] == "acme_" {
						return ts.issuer("acme")
					}
					return ""
				},
				InsecureAllowHTTP: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			return matrixSetup{g: g, right: "api://t",
				mintJWT:    func(aud any) string { return ts.mint("acme", oauthtest.Claims{"aud": aud}) },
				mintOpaque: func(aud any) string { return ts.mintOpaque("acme", oauthtest.Claims{"aud": aud}) },
				calls:      func() int { return len(ts.requests("/introspect")) }}
		}},
	}
	const other = "api://payments"
	type cell struct {
		status int
		desc   string // for 401
		calls  int    // introspection calls the request makes
	}
	notMeant := cell{401, "token not meant for this resource", 0}
	for _, shape := range shapes {
		for _, path := range []string{"JWT", "opaque", "JWT with IssuerIntrospectOn"} {
			s := shape.build(t, path == "JWT with IssuerIntrospectOn")
			var p *tokenguard.Principal
			h := s.g.Handler(principalHandler(&p))
			for _, aud := range []struct {
				name string
				aud  any
			}{{"right audience", s.right}, {"other audience", other}, {"no audience", nil}} {
				var want cell
				var token string
				switch path {
				case "JWT":
					token = s.mintJWT(aud.aud)
					want = map[string]cell{"right audience": {200, "", 0}, "other audience": notMeant, "no audience": notMeant}[aud.name]
				case "opaque":
					token = s.mintOpaque(aud.aud)
					// RFC 7662 makes aud optional: an answer without one is
					// the issuer vouching for the token here.
					want = map[string]cell{"right audience": {200, "", 1}, "other audience": {401, "token not meant for this resource", 1}, "no audience": {200, "", 1}}[aud.name]
				default:
					token = s.mintJWT(aud.aud)
					want = map[string]cell{"right audience": {200, "", 1}, "other audience": notMeant, "no audience": notMeant}[aud.name]
				}
				before := s.calls()
				w := call(h, "Bearer "+token)
				wantHeader := ""
				if want.status == 401 {
					wantHeader = wantChallenge(s.g, "invalid_token", want.desc)
				}
				where := shape.name + " / " + path + " / " + aud.name
				if got := w.Header().Get("WWW-Authenticate"); w.Code != want.status || got != wantHeader {
					t.Errorf("%s: %d %q\nwant %d %q", where, w.Code, got, want.status, wantHeader)
				}
				if n := s.calls() - before; n != want.calls {
					t.Errorf("%s: %d introspection calls, want %d", where, n, want.calls)
				}
			}
		}
	}
}
