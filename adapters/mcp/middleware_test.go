package tgmcp_test

import (
	"encoding/json"
	"io"
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

// An MCP client without a token gets the MCP authorization spec's answer:
// 401 with a challenge whose resource_metadata is the URL at which the
// server serves its RFC 9728 document.
func TestUnauthenticatedClient(t *testing.T) {
	e := newEnv(t, tokenguard.Config{ScopesSupported: []string{"orders:read"}})
	e.mux.Handle("/mcp", tgmcp.Middleware(e.g)(streamable(newMCPServer())))

	_, rec, err := connect(t, e.endpoint("/mcp"), "")
	if err == nil {
		t.Fatal("Connect without a token succeeded")
	}
	x := rec.first(t)
	if x.method != http.MethodPost || x.status != http.StatusUnauthorized {
		t.Fatalf("first exchange %s %d, want POST 401", x.method, x.status)
	}
	metadataURL := e.endpoint("/.well-known/oauth-protected-resource/mcp")
	want := `Bearer realm="` + e.endpoint("/mcp") + `", resource_metadata="` + metadataURL + `"`
	if got := x.header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, want)
	}
	if got := e.g.ResourceMetadataURL(); got != metadataURL {
		t.Errorf("Guard.ResourceMetadataURL() = %s, want %s", got, metadataURL)
	}

	// The URL in the challenge answers with this resource's document.
	res, err := http.Get(metadataURL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("metadata: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var doc struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
		BearerMethods        []string `json:"bearer_methods_supported"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Resource != e.endpoint("/mcp") || !slices.Equal(doc.AuthorizationServers, []string{e.as.Issuer}) ||
		!slices.Equal(doc.ScopesSupported, []string{"orders:read"}) || !slices.Equal(doc.BearerMethods, []string{"header"}) {
		t.Errorf("metadata document %+v", doc)
	}
}

// With a valid token the SDK's client lists and calls tools, and the tool
// finds the caller in req.Extra.TokenInfo, where the SDK puts it.
func TestToolSeesCaller(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	e.mux.Handle("/mcp", tgmcp.Middleware(e.g)(streamable(newMCPServer())))

	exp := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	tok := e.as.Mint(oauthtest.Claims{"sub": "alice", "client_id": "agent-7", "scope": "orders:read profile", "exp": exp.Unix()})
	cs, _, err := connect(t, e.endpoint("/mcp"), tok)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	if len(tools.Tools) != 1 || tools.Tools[0].Name != "whoami" {
		t.Fatalf("tools %+v", tools.Tools)
	}
	got := callWhoami(t, cs)
	want := whoami{
		UserID: `["` + e.as.Issuer + `","alice"]`, Scopes: []string{"orders:read", "profile"}, Issuer: e.as.Issuer, Client: "agent-7",
		Kind: "jwt", Expiry: exp.Unix(), ExtraSub: "alice", Subject: "alice", ContextScopes: []string{"orders:read", "profile"},
	}
	if !equalWhoami(got, want) {
		t.Errorf("whoami\n got %+v\nwant %+v", got, want)
	}
}

func equalWhoami(a, b whoami) bool {
	return a.UserID == b.UserID && slices.Equal(a.Scopes, b.Scopes) && a.Issuer == b.Issuer && a.Client == b.Client &&
		a.Kind == b.Kind && a.Expiry == b.Expiry && a.ExtraSub == b.ExtraSub && a.Subject == b.Subject &&
		slices.Equal(a.ContextScopes, b.ContextScopes)
}

// A scope requirement on the endpoint is checked on every request, so a
// client without the scope is told which one to ask for (step-up), and a
// client with it gets through.
func TestInsufficientScope(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	e.mux.Handle("/mcp", tgmcp.Middleware(e.g, tokenguard.AllScopes("orders:read"))(streamable(newMCPServer())))

	_, rec, err := connect(t, e.endpoint("/mcp"), e.as.Mint(oauthtest.Claims{"scope": "profile"}))
	if err == nil {
		t.Fatal("Connect without the scope succeeded")
	}
	x := rec.first(t)
	if x.status != http.StatusForbidden {
		t.Fatalf("status %d, want 403", x.status)
	}
	want := `Bearer realm="` + e.endpoint("/mcp") + `", error="insufficient_scope", error_description="token lacks a required scope", scope="orders:read", resource_metadata="` + e.g.ResourceMetadataURL() + `"`
	if got := x.header.Get("WWW-Authenticate"); got != want {
		t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, want)
	}

	cs, _, err := connect(t, e.endpoint("/mcp"), e.as.Mint(oauthtest.Claims{"sub": "bob", "scope": "orders:read"}))
	if err != nil {
		t.Fatalf("Connect with the scope: %v", err)
	}
	if got := callWhoami(t, cs); got.ExtraSub != "bob" || got.UserID != tgmcp.UserID(e.as.Issuer, "bob") || !slices.Equal(got.Scopes, []string{"orders:read"}) {
		t.Errorf("whoami %+v", got)
	}
}

// Every request of a session is checked, not only the first: the token of
// each request is what its tool sees, a token that became invalid is
// refused with the core's answer, and a token of another user is refused
// by the SDK, which binds the session to TokenInfo.UserID.
func TestEveryRequestChecked(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	e.mux.Handle("/mcp", tgmcp.Middleware(e.g)(streamable(newMCPServer())))
	// session opens a session as alice with scope a.
	session := func(t *testing.T) (*mcp.ClientSession, *recorder) {
		cs, rec, err := connect(t, e.endpoint("/mcp"), e.as.Mint(oauthtest.Claims{"sub": "alice", "scope": "a"}))
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		return cs, rec
	}
	t.Run("a new token of the same user", func(t *testing.T) {
		cs, rec := session(t)
		rec.setToken(e.as.Mint(oauthtest.Claims{"sub": "alice", "scope": "b"}))
		got := callWhoami(t, cs)
		if !slices.Equal(got.Scopes, []string{"b"}) || got.Subject != "alice" {
			t.Errorf("the tool saw %+v, want the current token's scopes [b]", got)
		}
		// What PrincipalFrom's doc warns about: a tool's context comes from
		// the request that created the session.
		if !slices.Equal(got.ContextScopes, []string{"a"}) {
			t.Errorf("tokenguard.PrincipalFrom(ctx) in the tool sees %v, not the first request's [a]: update PrincipalFrom's doc", got.ContextScopes)
		}
	})
	t.Run("an expired token", func(t *testing.T) {
		cs, rec := session(t)
		rec.setToken(e.as.Mint(oauthtest.Claims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}))
		x := refusedCall(t, cs, rec)
		want := `Bearer realm="` + e.endpoint("/mcp") + `", error="invalid_token", error_description="token expired", resource_metadata="` + e.g.ResourceMetadataURL() + `"`
		if x.status != http.StatusUnauthorized || x.header.Get("WWW-Authenticate") != want {
			t.Errorf("got %d %s", x.status, x.header.Get("WWW-Authenticate"))
		}
	})
	t.Run("another user's token", func(t *testing.T) {
		cs, rec := session(t)
		rec.setToken(e.as.Mint(oauthtest.Claims{"sub": "mallory"}))
		if x := refusedCall(t, cs, rec); x.status != http.StatusForbidden || x.sessionID == "" || x.header.Get("WWW-Authenticate") != "" {
			t.Errorf("got %d (session %q, challenge %q), want the SDK's 403 session user mismatch", x.status, x.sessionID, x.header.Get("WWW-Authenticate"))
		}
	})
}

// A token the Guard accepts within its leeway, already past exp by the
// SDK's strict clock, still reaches the tool with its real Expiration:
// expiry is the Guard's decision only.
func TestExpiryIsTheGuardsDecision(t *testing.T) {
	e := newEnv(t, tokenguard.Config{Leeway: time.Minute})
	e.mux.Handle("/mcp", tgmcp.Middleware(e.g)(streamable(newMCPServer())))

	exp := time.Now().Add(-20 * time.Second)
	cs, _, err := connect(t, e.endpoint("/mcp"), e.as.Mint(oauthtest.Claims{"sub": "alice", "exp": exp.Unix(), "iat": exp.Add(-time.Hour).Unix()}))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if got := callWhoami(t, cs); got.Expiry != exp.Unix() {
		t.Errorf("Expiration %d, want %d", got.Expiry, exp.Unix())
	}
}

// The context Middleware passes on is what auth.TokenInfoFromContext and
// tokenguard.PrincipalFrom read, for plain net/http handlers too, and a
// rejected request never reaches the handler.
func TestContext(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	var got *auth.TokenInfo
	var p *tokenguard.Principal
	h := tgmcp.Middleware(e.g)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = auth.TokenInfoFromContext(r.Context())
		p, _ = tokenguard.PrincipalFrom(r.Context())
	}))
	serve := func(auth string) *httptest.ResponseRecorder {
		got, p = nil, nil
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	if w := serve("Bearer " + e.as.Mint(oauthtest.Claims{"sub": "carol", "scope": "x y"})); w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	if got == nil || p == nil {
		t.Fatalf("TokenInfo %v, Principal %v", got, p)
	}
	if got.UserID != tgmcp.UserID(e.as.Issuer, "carol") || got.Extra[tgmcp.ExtraSubject] != "carol" || !slices.Equal(got.Scopes, []string{"x", "y"}) || got.Extra[tgmcp.ExtraPrincipal] != p || !got.Expiration.Equal(p.Expiry) {
		t.Errorf("TokenInfo %+v for Principal %+v", got, p)
	}

	for _, auth := range []string{"", "Basic YTpi", "Bearer not-a-jwt"} {
		if w := serve(auth); w.Code == http.StatusOK || got != nil || p != nil {
			t.Errorf("Authorization %q: status %d, handler reached: %v", auth, w.Code, got != nil || p != nil)
		}
	}
}

// Middleware nested in Middleware (an endpoint-wide one and a stricter
// one) checks both, and the inner one keeps the TokenInfo the outer stored.
func TestNested(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	var outer, inner *auth.TokenInfo
	h := tgmcp.Middleware(e.g)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		outer = auth.TokenInfoFromContext(r.Context())
		tgmcp.Middleware(e.g, tokenguard.AllScopes("admin"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inner = auth.TokenInfoFromContext(r.Context())
		})).ServeHTTP(w, r)
	}))
	for _, tc := range []struct {
		scope  string
		status int
	}{{"admin", http.StatusOK}, {"user", http.StatusForbidden}} {
		outer, inner = nil, nil
		r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		r.Header.Set("Authorization", "Bearer "+e.as.Mint(oauthtest.Claims{"scope": tc.scope}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status || outer == nil || (tc.status == http.StatusOK) != (inner != nil) {
			t.Errorf("scope %s: status %d, outer %v, inner %v", tc.scope, w.Code, outer, inner)
		}
		if inner != nil && inner != outer {
			t.Errorf("the inner Middleware replaced the TokenInfo")
		}
		body, _ := io.ReadAll(w.Body)
		if tc.status == http.StatusForbidden && string(body) != `{"error":"insufficient_scope","error_description":"token lacks a required scope","scope":"admin"}`+"\n" {
			t.Errorf("body %s", body)
		}
	}
}

func TestNilGuardPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Middleware(nil) did not panic")
		}
	}()
	tgmcp.Middleware(nil)
}
