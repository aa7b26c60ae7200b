package tgmcp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"

	tgmcp "github.com/tokenguard/tokenguard/adapters/mcp"
)

// principal authenticates a request carrying tok and returns its Principal.
func principal(t *testing.T, g *tokenguard.Guard, tok string) *tokenguard.Principal {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	p, err := g.Authenticate(r)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return p
}

func TestTokenInfo(t *testing.T) {
	if tgmcp.TokenInfo(nil) != nil {
		t.Error("TokenInfo(nil) is not nil")
	}
	e := newEnv(t, tokenguard.Config{})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)

	for _, tc := range []struct {
		name  string
		token string
		want  auth.TokenInfo
		kind  string
	}{
		{
			name:  "jwt",
			token: e.as.Mint(oauthtest.Claims{"sub": "alice", "client_id": "agent", "scope": "a b", "scp": []string{"c"}, "exp": exp.Unix()}),
			want:  auth.TokenInfo{UserID: `["` + e.as.Issuer + `","alice"]`, Scopes: []string{"a", "b", "c"}, Expiration: exp},
			kind:  "jwt",
		},
		{
			name:  "no sub, no client_id, no scope",
			token: e.as.Mint(oauthtest.Claims{"sub": nil, "client_id": nil, "exp": exp.Unix()}),
			want:  auth.TokenInfo{Expiration: exp},
			kind:  "jwt",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := principal(t, e.g, tc.token)
			ti := tgmcp.TokenInfo(p)
			if ti.UserID != tc.want.UserID || !slices.Equal(ti.Scopes, tc.want.Scopes) || !ti.Expiration.Equal(tc.want.Expiration) {
				t.Errorf("got %+v, want %+v", ti, tc.want)
			}
			wantExtra := map[string]any{
				tgmcp.ExtraPrincipal: p,
				tgmcp.ExtraSubject:   p.Subject,
				tgmcp.ExtraIssuer:    e.as.Issuer,
				tgmcp.ExtraClientID:  p.ClientID,
				tgmcp.ExtraKind:      tc.kind,
			}
			if len(ti.Extra) != len(wantExtra) {
				t.Errorf("Extra %v, want %v", ti.Extra, wantExtra)
			}
			for k, v := range wantExtra {
				if ti.Extra[k] != v {
					t.Errorf("Extra[%q] = %v, want %v", k, ti.Extra[k], v)
				}
			}
			if len(ti.Scopes) > 0 {
				ti.Scopes[0] = "changed"
				if p.Scopes[0] == "changed" {
					t.Error("TokenInfo.Scopes shares the Principal's array")
				}
			}
		})
	}
}

// UserID is injective: pairs that a separator-joined or concatenated
// encoding would confuse get different UserIDs, and the issuer always
// counts. A token without sub leaves its session unbound, as before.
func TestUserID(t *testing.T) {
	pairs := [][2]string{
		{"https://a.example", "alice"},
		{"https://b.example", "alice"},
		{"https://a.example/", "alice"},
		{"https://a.example/alice", ""},
		{"https://a.example/", "/alice"},
		{"https://a.example", "/alice"},
		{"https://a.example#", "alice"},
		{"https://a.example", "#alice"},
		{`https://a.example","x`, "y"},
		{"https://a.example", `x","y`},
		{`https://a.example\`, `"x`},
		{"https://a.example", "<alice>"},
		{"https://a.example", `\u003calice\u003e`},
		{"", `["https://a.example","alice"]`},
		{"https://a.example", "ALICE"},
		{"https://a.example", "alice\x00"},
	}
	seen := map[string][2]string{}
	for _, pair := range pairs {
		id := tgmcp.UserID(pair[0], pair[1])
		if pair[1] == "" {
			if id != "" {
				t.Errorf("UserID(%q, \"\") = %q, want \"\"", pair[0], id)
			}
			continue
		}
		if prev, ok := seen[id]; ok {
			t.Errorf("UserID(%q, %q) = UserID(%q, %q) = %s", pair[0], pair[1], prev[0], prev[1], id)
		}
		seen[id] = pair
		var back [2]string
		if err := json.Unmarshal([]byte(id), &back); err != nil || back != pair {
			t.Errorf("UserID(%q, %q) = %s, which reads back as %q (%v)", pair[0], pair[1], id, back, err)
		}
	}
	if got, want := tgmcp.UserID("https://as.example.com", "alice"), `["https://as.example.com","alice"]`; got != want {
		t.Errorf("UserID = %s, want %s", got, want)
	}
}

// PrincipalFrom reads the Principal from the request a handler serves, and
// reports false for requests that did not come through Middleware.
func TestPrincipalFrom(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	p := principal(t, e.g, e.as.Mint(oauthtest.Claims{"sub": "dave"}))

	for _, tc := range []struct {
		name string
		req  mcp.Request
		want *tokenguard.Principal
	}{
		{"through Middleware", &mcp.CallToolRequest{Extra: &mcp.RequestExtra{TokenInfo: tgmcp.TokenInfo(p)}}, p},
		{"no Extra (in-memory transport)", &mcp.CallToolRequest{}, nil},
		{"no TokenInfo", &mcp.ListToolsRequest{Extra: &mcp.RequestExtra{}}, nil},
		{"another verifier's TokenInfo", &mcp.CallToolRequest{Extra: &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{UserID: "x"}}}, nil},
		{"a client-side request", &mcp.CreateMessageRequest{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tgmcp.PrincipalFrom(tc.req)
			if got != tc.want || ok != (tc.want != nil) {
				t.Errorf("PrincipalFrom = %v, %v; want %v", got, ok, tc.want)
			}
		})
	}
}

// Over a transport without HTTP (here in-memory), tools see no TokenInfo
// and PrincipalFrom reports false: nothing is made up.
func TestInMemoryTransport(t *testing.T) {
	ctx := context.Background()
	st, ct := mcp.NewInMemoryTransports()
	ss, err := newMCPServer().Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "c", Version: "v0"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if got := callWhoami(t, cs); got.UserID != "" || got.Subject != "" || got.Scopes != nil {
		t.Errorf("whoami over memory: %+v", got)
	}
}

// With Config.ScopeClaim, TokenInfo.Scopes holds that claim's values: the
// scopes the Guard's requirements granted, not scope and scp.
func TestTokenInfoScopeClaim(t *testing.T) {
	e := newEnv(t, tokenguard.Config{ScopeClaim: "permissions"})
	p := principal(t, e.g, e.as.Mint(oauthtest.Claims{"permissions": []string{"tools:call"}, "scope": "other"}))
	if got := tgmcp.TokenInfo(p).Scopes; !slices.Equal(got, []string{"tools:call"}) {
		t.Errorf("Scopes %v, want [tools:call]", got)
	}
}

// A client whose id is a user's subject (TokenShape.ClientAsSubject) does
// not share that user's UserID, so it cannot pass for the user's session.
func TestClientSubjectHasItsOwnUserID(t *testing.T) {
	user := &tokenguard.Principal{Issuer: "https://as.example", Subject: "user-1"}
	client := &tokenguard.Principal{Issuer: "https://as.example", Subject: "user-1", ClientID: "user-1", SubjectIsClient: true}
	u, c := tgmcp.TokenInfo(user).UserID, tgmcp.TokenInfo(client).UserID
	if u == c || u != tgmcp.UserID("https://as.example", "user-1") || c == "" {
		t.Errorf("user %q, client %q: want different, non-empty ids", u, c)
	}
}
