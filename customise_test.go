package tokenguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// A team's own error body (problem+json): the challenge, Retry-After and
// Cache-Control stay exactly the Guard's, and the handler gets the reason.
func TestErrorHandlerWritesTheBodyTheChallengeStays(t *testing.T) {
	as := shared(t)
	var reasons []string
	g := newGuard(t, as, tokenguard.Config{
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, e *tokenguard.Error) {
			reasons = append(reasons, string(e.Reason))
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(e.Status)
			_ = json.NewEncoder(w).Encode(map[string]any{"type": "urn:tokenguard:" + string(e.Reason), "status": e.Status})
		},
	})
	h := g.Require(tokenguard.AllScopes("orders:write"))(okHandler)

	expired := as.Mint(oauthtest.Claims{"exp": time.Now().Add(-time.Hour)})
	w := call(h, "Bearer "+expired)
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != withScope(wantChallenge(g, "invalid_token", "token expired"), "orders:write") {
		t.Fatalf("expired: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" || w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers: Content-Type %q, Cache-Control %q", ct, w.Header().Get("Cache-Control"))
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["type"] != "urn:tokenguard:token_expired" {
		t.Errorf("body %s (%v)", w.Body, err)
	}

	w = call(h, "Bearer "+as.Mint(oauthtest.Claims{"scope": "orders:read"}))
	want := `Bearer realm="` + g.Resource() + `", error="insufficient_scope", error_description="token lacks a required scope", scope="orders:write", resource_metadata="` + g.ResourceMetadataURL() + `"`
	if w.Code != 403 || w.Header().Get("WWW-Authenticate") != want {
		t.Errorf("403: %d %q\nwant %q", w.Code, w.Header().Get("WWW-Authenticate"), want)
	}
	if got := g.Challenge(&tokenguard.Error{Status: 403, Code: "insufficient_scope", Description: "token lacks a required scope", Scopes: []string{"orders:write"}}); got != want {
		t.Errorf("Challenge: %q, want %q", got, want)
	}
	if fmt.Sprint(reasons) != "[token_expired scope_insufficient]" {
		t.Errorf("reasons %v", reasons)
	}
}

// A 503 through the ErrorHandler keeps its Retry-After and carries no
// challenge.
func TestErrorHandlerUnavailableKeepsRetryAfter(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	g := newGuard(t, as, tokenguard.Config{
		MaxKeyStaleness: time.Millisecond,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, e *tokenguard.Error) {
			w.WriteHeader(e.Status)
			_, _ = io.WriteString(w, "custom")
		},
	})
	time.Sleep(5 * time.Millisecond) // the key set is now stale
	w := call(g.Handler(okHandler), "Bearer "+as.Mint(nil))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || w.Header().Get("WWW-Authenticate") != "" || w.Body.String() != "custom" {
		t.Errorf("%d Retry-After %q WWW-Authenticate %q body %q", w.Code, w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"), w.Body)
	}
	if g.Challenge(&tokenguard.Error{Status: 503}) != "" {
		t.Error("a 503 has a challenge")
	}
}

// withScope inserts scope="..." where the Guard puts it: before
// resource_metadata.
func withScope(challenge, scope string) string {
	if i := strings.Index(challenge, ", resource_metadata="); i >= 0 {
		return challenge[:i] + `, scope="` + scope + `"` + challenge[i:]
	}
	return challenge + `, scope="` + scope + `"`
}

// A route with a scope requirement names its scopes in the 401, so that
// a client (an MCP client) asks for them when it gets a token.
func TestUnauthenticatedChallengeNamesTheRoutesScopes(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	h := g.Require(tokenguard.AllScopes("orders:read"), tokenguard.AnyScope("orders:admin", "orders:read"))(okHandler)
	w := call(h, "")
	if want := withScope(wantChallenge(g, "", ""), "orders:read orders:admin"); w.Code != 401 || w.Header().Get("WWW-Authenticate") != want {
		t.Errorf("no token: %d %q\nwant %q", w.Code, w.Header().Get("WWW-Authenticate"), want)
	}
	// A route without scope requirements, and a malformed request, name none.
	w = call(g.Require(tokenguard.ClaimIs("tenant", "a"))(okHandler), "")
	if want := wantChallenge(g, "", ""); w.Header().Get("WWW-Authenticate") != want {
		t.Errorf("claim route: %q, want %q", w.Header().Get("WWW-Authenticate"), want)
	}
	w = call(h, "Bearer a b")
	if w.Code != 400 || strings.Contains(w.Header().Get("WWW-Authenticate"), "scope=") {
		t.Errorf("400: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

// The metadata document lists the scopes the routes require unless
// Config.ScopesSupported says otherwise.
func TestScopesSupportedDefaultsToTheRoutesScopes(t *testing.T) {
	as := shared(t)
	doc := func(g *tokenguard.Guard) []string {
		w := httptest.NewRecorder()
		g.MetadataHandler().ServeHTTP(w, httptest.NewRequest("GET", g.MetadataPath(), nil))
		var d struct {
			Scopes []string `json:"scopes_supported"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
			t.Fatalf("%s: %v", w.Body, err)
		}
		return d.Scopes
	}
	g := newGuard(t, as, tokenguard.Config{})
	if got := doc(g); got != nil {
		t.Errorf("before any route: %q", got)
	}
	g.RequireScopes("orders:write", "orders:read")
	g.Require(tokenguard.AnyScope("admin"), tokenguard.ClaimIs("x", "y"))
	if got := fmt.Sprint(doc(g)); got != "[admin orders:read orders:write]" {
		t.Errorf("after routes: %s", got)
	}
	// Requirements an adapter checks per request (Check) count too.
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+as.Mint(oauthtest.Claims{"scope": "reports"}))
	if _, err := g.Check(r, tokenguard.AllScopes("reports")); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(doc(g)); got != "[admin orders:read orders:write reports]" {
		t.Errorf("after Check: %s", got)
	}

	fixed := newGuard(t, as, tokenguard.Config{ScopesSupported: []string{"only"}})
	fixed.RequireScopes("orders:write")
	if got := fmt.Sprint(doc(fixed)); got != "[only]" {
		t.Errorf("configured: %s", got)
	}
}

// A 403's debug record names the scopes the token had (so a wrong
// ScopeClaim shows), and never the token.
func TestForbiddenLogNamesTheTokensScopes(t *testing.T) {
	as := shared(t)
	var logs logBuffer
	g := newGuard(t, as, tokenguard.Config{Logger: logs.logger(), ScopeClaim: "permissions"})
	token := as.Mint(oauthtest.Claims{"scope": "orders:read", "permissions": []string{"orders:list"}})
	w := call(g.RequireScopes("orders:read")(okHandler), "Bearer "+token)
	if w.Code != 403 {
		t.Fatalf("%d", w.Code)
	}
	out := logs.String()
	if !strings.Contains(out, `token has [\"orders:list\"]`) || strings.Contains(out, token) {
		t.Errorf("log: %s", out)
	}
}

func TestClaimEqualsScalars(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	token := as.Mint(oauthtest.Claims{
		"email_verified": true, "level": 3, "ratio": 0.5, "big": json.Number("9007199254740993"),
		"gone": json.RawMessage("null"), "tags": []any{1, "x", false}, "obj": map[string]any{"a": 1}, "name": "3",
	})
	cases := []struct {
		name  string
		value any
		ok    bool
	}{
		{"email_verified", true, true},
		{"email_verified", false, false},
		{"email_verified", "true", false},
		{"level", 3, true},
		{"level", int64(3), true},
		{"level", 3.0, true},
		{"level", uint8(3), true},
		{"level", 4, false},
		{"level", "3", false},
		{"ratio", 0.5, true},
		{"ratio", float32(0.5), true},
		{"big", uint64(9007199254740993), true},
		{"big", uint64(9007199254740992), false}, // the same float64
		{"gone", nil, true},
		{"tags", 1, true},
		{"tags", "x", true},
		{"tags", false, true},
		{"tags", true, false},
		{"obj", 1, false},
		{"name", 3, false},
		{"name", "3", true},
		{"missing", nil, false},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		_, err := g.Check(r, tokenguard.ClaimEquals(c.name, c.value))
		if (err == nil) != c.ok {
			t.Errorf("ClaimEquals(%q, %#v): %v, want ok=%v", c.name, c.value, err, c.ok)
		}
		if err != nil && !errors.Is(err, tokenguard.ReasonRequirementNotMet) {
			t.Errorf("ClaimEquals(%q, %#v): reason of %v", c.name, c.value, err)
		}
	}
	for _, bad := range []any{map[string]any{}, []string{"a"}, struct{}{}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("ClaimEquals with %T did not panic", bad)
				}
			}()
			tokenguard.ClaimEquals("x", bad)
		}()
	}
}

// Tokens from a cookie or a WebSocket subprotocol get the header's checks:
// syntax, size, and one place only.
func TestTokenSources(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{
		TokenSources:  []tokenguard.TokenSource{tokenguard.CookieToken("at"), tokenguard.WebSocketProtocolToken("access_token.")},
		MaxTokenBytes: 4096,
	})
	var seen reached
	h := g.Handler(seen.handler())
	token := as.Mint(oauthtest.Claims{"sub": "alice"})
	send := func(mod func(r *http.Request)) *httptest.ResponseRecorder {
		seen = reached{}
		r := httptest.NewRequest("GET", "/ws", nil)
		mod(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	cases := []struct {
		what   string
		mod    func(r *http.Request)
		status int
		desc   string
	}{
		{"cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "at", Value: token}) }, 200, ""},
		{"empty cookie is none", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "at", Value: ""}) }, 401, ""},
		{"subprotocol", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Protocol", "chat, access_token."+token) }, 200, ""},
		{"cookie and header", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "at", Value: token})
			r.Header.Set("Authorization", "Bearer "+token)
		}, 400, "token sent by more than one method"},
		{"cookie and subprotocol", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "at", Value: token})
			r.Header.Set("Sec-WebSocket-Protocol", "access_token."+token)
		}, 400, "token sent by more than one method"},
		{"two cookies", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "at", Value: token})
			r.AddCookie(&http.Cookie{Name: "at", Value: token})
		}, 400, "token sent more than once"},
		{"two subprotocols", func(r *http.Request) {
			r.Header.Add("Sec-WebSocket-Protocol", "access_token."+token)
			r.Header.Add("Sec-WebSocket-Protocol", "access_token.x")
		}, 400, "token sent more than once"},
		{"empty subprotocol token", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Protocol", "access_token.") }, 400, "empty token"},
		{"bad syntax", func(r *http.Request) { r.Header.Set("Cookie", "at=a%20b") }, 400, "token has characters a bearer token cannot have"},
		{"too large", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "at", Value: strings.Repeat("a", 5000)}) }, 401, "token too large"},
		{"forged", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "at", Value: tamperSignature(token)}) }, 401, "invalid signature"},
	}
	for _, c := range cases {
		w := send(c.mod)
		want := ""
		switch c.status {
		case 400:
			want = wantChallenge(g, "invalid_request", c.desc)
		case 401:
			want = wantChallenge(g, "invalid_token", c.desc)
			if c.desc == "" {
				want = wantChallenge(g, "", "")
			}
		}
		if w.Code != c.status || w.Header().Get("WWW-Authenticate") != want {
			t.Errorf("%s: %d %q\nwant %d %q", c.what, w.Code, w.Header().Get("WWW-Authenticate"), c.status, want)
		}
		if c.status == 200 && (seen.principal == nil || seen.principal.Subject != "alice") {
			t.Errorf("%s: principal %+v", c.what, seen.principal)
		}
	}
}

// Optional lets anonymous requests through, never a bad token.
func TestOptionalAuthentication(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	var seen reached
	h := g.Optional(seen.handler())
	for _, c := range []struct {
		what, auth string
		status     int
		principal  bool
		challenge  string
	}{
		{"anonymous", "", 200, false, ""},
		{"another scheme", "Basic YTpi", 200, false, ""},
		{"valid", "Bearer " + as.Mint(nil), 200, true, ""},
		{"expired", "Bearer " + as.Mint(oauthtest.Claims{"exp": time.Now().Add(-time.Hour)}), 401, false, wantChallenge(g, "invalid_token", "token expired")},
		{"forged", "Bearer " + tamperSignature(as.Mint(nil)), 401, false, wantChallenge(g, "invalid_token", "invalid signature")},
		{"empty", "Bearer ", 400, false, wantChallenge(g, "invalid_request", "empty bearer token")},
	} {
		seen = reached{}
		w := call(h, c.auth)
		if w.Code != c.status || (seen.principal != nil) != c.principal || seen.called != (c.status == 200) || w.Header().Get("WWW-Authenticate") != c.challenge {
			t.Errorf("%s: %d called=%v principal=%v %q", c.what, w.Code, seen.called, seen.principal != nil, w.Header().Get("WWW-Authenticate"))
		}
	}
	// A requirement after Optional still wants a token.
	w := call(g.Optional(g.RequireScopes("x")(okHandler)), "")
	if w.Code != 401 {
		t.Errorf("Optional then RequireScopes, anonymous: %d", w.Code)
	}
}

// jwksDocument fetches as's key set.
func jwksDocument(t *testing.T, as *oauthtest.Server) []byte {
	t.Helper()
	resp, err := as.Client().Get(as.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	doc, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// Static keys: nothing is fetched, tokens verify, an unknown key is
// refused at once.
func TestStaticKeys(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	doc := jwksDocument(t, as)
	as.ResetCounts()
	g := newGuardAt(t, tokenguard.Config{Issuer: as.Issuer, Audience: as.Resource(), JWKS: doc})
	h := g.Handler(okHandler)
	if w := call(h, "Bearer "+as.Mint(nil)); w.Code != 200 {
		t.Fatalf("valid: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	kid := as.RotateKey("RS256")
	w := call(h, "Bearer "+as.MintWith(oauthtest.MintOptions{KeyID: kid}))
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") != wantChallenge(g, "invalid_token", "unknown signing key") {
		t.Errorf("rotated key: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	for _, ep := range []string{oauthtest.EndpointServerMetadata, oauthtest.EndpointOpenIDConfiguration, oauthtest.EndpointJWKS} {
		if n := as.Requests(ep); n != 0 {
			t.Errorf("%s fetched %d times", ep, n)
		}
	}

	// A Config.Issuers entry may carry its keys too (now with the new one).
	g2 := newGuardAt(t, tokenguard.Config{Issuers: []tokenguard.TrustedIssuer{{Issuer: as.Issuer, Audience: as.Resource(), JWKS: jwksDocument(t, as)}}})
	if w := call(g2.Handler(okHandler), "Bearer "+as.Mint(nil)); w.Code != 200 {
		t.Errorf("TrustedIssuer.JWKS: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	for name, cfg := range map[string]tokenguard.Config{
		"no usable key":    {Issuer: as.Issuer, Audience: "a", JWKS: []byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`)},
		"not a key set":    {Issuer: as.Issuer, Audience: "a", JWKS: []byte(`[]`)},
		"empty":            {Issuer: as.Issuer, Audience: "a", JWKS: []byte{}},
		"with a JWKS URL":  {Issuer: as.Issuer, Audience: "a", JWKS: doc, JWKSURL: as.JWKSURL()},
		"without issuer":   {Resource: "https://api.example.com", JWKS: doc},
		"on a pattern":     {Issuers: []tokenguard.TrustedIssuer{{Issuer: "https://*.example.com", Audience: "a", JWKS: doc}}},
		"retry won't help": {Issuer: as.Issuer, Audience: "a", JWKS: []byte(`{"keys":[]}`), RetryStartup: true},
	} {
		cfg.InsecureAllowHTTP = true
		if g, err := tokenguard.New(context.Background(), cfg); err == nil {
			g.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// An authorization server down at start-up: with RetryStartup, New
// returns a Guard that answers 503 with Retry-After, retries in the
// background and serves once the server is back.
func TestRetryStartup(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	down := &oauthtest.Fault{Status: 503}
	as.SetFault(oauthtest.EndpointServerMetadata, down)
	as.SetFault(oauthtest.EndpointOpenIDConfiguration, down)
	cfg := tokenguard.Config{Issuer: as.Issuer, Resource: as.Resource(), InsecureAllowHTTP: true}

	if g, err := tokenguard.New(context.Background(), cfg); err == nil {
		g.Close()
		t.Fatal("without RetryStartup, New succeeded with the server down")
	}
	cfg.RetryStartup = true
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer g.Close()
	if err := g.Ready(); !errors.Is(err, tokenguard.ErrUnavailable) {
		t.Errorf("Ready before start: %v", err)
	}
	if g.MetadataPath() == "" || g.Resource() != as.Resource() {
		t.Errorf("before start: MetadataPath %q, Resource %q", g.MetadataPath(), g.Resource())
	}
	scoped := g.RequireScopes("orders:read")(okHandler)
	token := as.Mint(oauthtest.Claims{"scope": "orders:read"})
	w := call(scoped, "Bearer "+token)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || w.Header().Get("WWW-Authenticate") != "" {
		t.Errorf("before start: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	mw := httptest.NewRecorder()
	g.MetadataHandler().ServeHTTP(mw, httptest.NewRequest("GET", g.MetadataPath(), nil))
	if mw.Code != 503 || mw.Header().Get("Retry-After") == "" {
		t.Errorf("metadata before start: %d", mw.Code)
	}
	// A malformed request is still answered as one, with the challenge.
	if w := call(g.Handler(okHandler), "Bearer a b"); w.Code != 503 {
		t.Errorf("malformed before start: %d", w.Code)
	}

	as.SetFault(oauthtest.EndpointServerMetadata, nil)
	as.SetFault(oauthtest.EndpointOpenIDConfiguration, nil)
	deadline := time.Now().Add(10 * time.Second)
	for g.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("not started after the server came back: %v", g.Ready())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if w := call(scoped, "Bearer "+token); w.Code != 200 {
		t.Errorf("after start: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := call(scoped, "Bearer "+as.Mint(nil)); w.Code != 403 {
		t.Errorf("after start, no scope: %d", w.Code)
	}
	if w := call(scoped, ""); w.Header().Get("WWW-Authenticate") != withScope(wantChallenge(g, "", ""), "orders:read") {
		t.Errorf("after start, no token: %q", w.Header().Get("WWW-Authenticate"))
	}
	mw = httptest.NewRecorder()
	g.MetadataHandler().ServeHTTP(mw, httptest.NewRequest("GET", g.MetadataPath(), nil))
	if mw.Code != 200 || !strings.Contains(mw.Body.String(), `"scopes_supported":["orders:read"]`) {
		t.Errorf("metadata after start: %d %s", mw.Code, mw.Body)
	}
	if got := g.Issuers(); len(got) != 1 || got[0] != as.Issuer {
		t.Errorf("Issuers %q", got)
	}
}

// Close during the retries stops them; a configuration error fails New
// even with RetryStartup.
func TestRetryStartupCloseAndConfigErrors(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	as.SetFault(oauthtest.EndpointServerMetadata, &oauthtest.Fault{Status: 500})
	as.SetFault(oauthtest.EndpointOpenIDConfiguration, &oauthtest.Fault{Status: 500})
	g, err := tokenguard.New(context.Background(), tokenguard.Config{Issuer: as.Issuer, Audience: "a", InsecureAllowHTTP: true, RetryStartup: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { g.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop the start-up retries")
	}
	before := as.Requests(oauthtest.EndpointServerMetadata)
	time.Sleep(2500 * time.Millisecond)
	if n := as.Requests(oauthtest.EndpointServerMetadata); n != before {
		t.Errorf("fetched %d times after Close", n-before)
	}

	for name, cfg := range map[string]tokenguard.Config{
		"bad algorithm":      {Issuer: as.Issuer, Audience: "a", Algorithms: []string{"rs256"}},
		"audience and skip":  {Issuer: as.Issuer, Audience: "a", InsecureSkipAudienceCheck: true},
		"plain http refused": {Issuer: as.Issuer, Audience: "a"},
	} {
		cfg.RetryStartup = true
		cfg.InsecureAllowHTTP = name != "plain http refused"
		if g, err := tokenguard.New(context.Background(), cfg); err == nil {
			g.Close()
			t.Errorf("%s: New succeeded", name)
		}
	}
}
