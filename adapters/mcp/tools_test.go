package tgmcp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"golang.org/x/oauth2"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
	"github.com/tokenguard/tokenguard/oauthtest/conformance"

	tgmcp "github.com/tokenguard/tokenguard/adapters/mcp"
)

// adminOnly is the per-tool requirement of the tests: the tool admin
// needs the scope admin, every other tool nothing beyond the endpoint's.
var adminOnly = map[string][]tokenguard.Requirement{"admin": {tokenguard.AllScopes("admin")}}

// insufficient is the challenge of a 403 for the scopes, on e's endpoint.
func (e *env) insufficient(scopes string) string {
	return `Bearer realm="` + e.endpoint("/mcp") + `", error="insufficient_scope", error_description="token lacks a required scope", scope="` + scopes + `", resource_metadata="` + e.g.ResourceMetadataURL() + `"`
}

// ambiguous is the challenge of the 400 for an ambiguous body.
func (e *env) ambiguous() string {
	return `Bearer realm="` + e.endpoint("/mcp") + `", error="invalid_request", error_description="ambiguous JSON-RPC message", resource_metadata="` + e.g.ResourceMetadataURL() + `"`
}

// stepUp is an MCP client's auth.OAuthHandler that does what the MCP
// authorization spec's step-up flow asks: on a 403 insufficient_scope it
// gets a token with its scopes and those of the challenge (here, minted
// by the test authorization server), after which the SDK's transport
// retries the request.
type stepUp struct {
	mint func(scope string) string

	mu         sync.Mutex
	scopes     []string
	token      string
	challenges []string // WWW-Authenticate of each 403 it was given
}

func (s *stepUp) TokenSource(context.Context) (oauth2.TokenSource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: s.token, TokenType: "Bearer"}), nil
}

func (s *stepUp) Authorize(_ context.Context, _ *http.Request, res *http.Response) error {
	defer res.Body.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	challenge := res.Header.Get("WWW-Authenticate")
	s.challenges = append(s.challenges, challenge)
	_, scope, ok := strings.Cut(challenge, `scope="`)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(challenge, `error="insufficient_scope"`) || !ok {
		return fmt.Errorf("no step-up for %d %s", res.StatusCode, challenge)
	}
	scope, _, _ = strings.Cut(scope, `"`)
	for _, sc := range strings.Fields(scope) {
		if !slices.Contains(s.scopes, sc) {
			s.scopes = append(s.scopes, sc)
		}
	}
	s.token = s.mint(strings.Join(s.scopes, " "))
	return nil
}

// The MCP step-up flow through the SDK's own client, on one endpoint and
// one session: a token without the admin scope opens the session, lists
// every tool and calls the one without a requirement; its call of admin
// gets 403 insufficient_scope naming admin, and admin does not run; the
// client's OAuthHandler gets a token with admin as well, the SDK retries,
// and admin runs, in the same session.
func TestToolStepUp(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	var ran ranLog
	e.mux.Handle("/mcp", tgmcp.Protect(e.g, tgmcp.Options{Tools: adminOnly})(streamable(newToolServer(&ran, "admin", "safe"))))

	oauth := &stepUp{
		mint:   func(scope string) string { return e.as.Mint(oauthtest.Claims{"sub": "alice", "scope": scope}) },
		scopes: []string{"profile"},
	}
	oauth.token = oauth.mint("profile")
	rec := &recorder{} // no token of its own: the OAuthHandler's goes through
	c := mcp.NewClient(&mcp.Implementation{Name: "tgmcp-test-client", Version: "v0.0.1"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{
		Endpoint:     e.endpoint("/mcp"),
		HTTPClient:   &http.Client{Transport: rec},
		OAuthHandler: oauth,
		MaxRetries:   -1,
	}, nil)
	if err != nil {
		t.Fatalf("Connect without admin: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })

	tools, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if slices.Sort(names); !slices.Equal(names, []string{"admin", "safe"}) {
		t.Errorf("tools/list without admin: %v, want both tools", names)
	}
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "safe"}); err != nil {
		t.Fatalf("CallTool(safe): %v", err)
	}
	if got := ran.take(); !slices.Equal(got, []string{"safe"}) {
		t.Fatalf("ran %v, want [safe]", got)
	}
	if len(oauth.challenges) != 0 {
		t.Fatalf("step-up before the admin call: %q", oauth.challenges)
	}

	rec.mu.Lock()
	n := len(rec.log)
	rec.mu.Unlock()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "admin"})
	if err != nil || res.IsError {
		t.Fatalf("CallTool(admin) after step-up: %v %+v", err, res)
	}
	if got := ran.take(); !slices.Equal(got, []string{"admin"}) {
		t.Errorf("ran %v, want [admin] once", got)
	}
	if want := []string{e.insufficient("admin")}; !slices.Equal(oauth.challenges, want) {
		t.Errorf("challenges\n got %q\nwant %q", oauth.challenges, want)
	}
	if !slices.Equal(oauth.scopes, []string{"profile", "admin"}) {
		t.Errorf("scopes after step-up %v", oauth.scopes)
	}
	rec.mu.Lock()
	var statuses []int
	for _, x := range rec.log[n:] {
		statuses = append(statuses, x.status)
		if x.sessionID != cs.ID() {
			t.Errorf("a request of session %q, want %q", x.sessionID, cs.ID())
		}
	}
	rec.mu.Unlock()
	if !slices.Equal(statuses, []int{http.StatusForbidden, http.StatusOK}) {
		t.Errorf("the admin call's exchanges: %v, want 403 then 200", statuses)
	}
}

// A client that does not step up gets the 403, and the tool does not run.
func TestToolRefused(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	var ran ranLog
	e.mux.Handle("/mcp", tgmcp.Protect(e.g, tgmcp.Options{Tools: adminOnly})(streamable(newToolServer(&ran, "admin", "safe"))))
	cs, rec, err := connect(t, e.endpoint("/mcp"), e.as.Mint(oauthtest.Claims{"sub": "alice", "scope": "profile"}))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	x := refusedCallTo(t, cs, rec, "admin")
	if x.status != http.StatusForbidden || x.header.Get("WWW-Authenticate") != e.insufficient("admin") {
		t.Errorf("admin without the scope: %d %s", x.status, x.header.Get("WWW-Authenticate"))
	}
	if got := ran.take(); len(got) != 0 {
		t.Errorf("ran %v on a refused call", got)
	}
}

// Tool requirements come on top of the endpoint's: the endpoint's are
// checked first (and a token that fails them is told those scopes, with
// the body unread), then the tool's; a requirement that is not a scope
// gets the core's 403 without scope=.
func TestToolAndEndpointRequirements(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	var ran ranLog
	e.mux.Handle("/mcp", tgmcp.Protect(e.g, tgmcp.Options{
		Require: []tokenguard.Requirement{tokenguard.AllScopes("mcp:tools")},
		Tools: map[string][]tokenguard.Requirement{
			"admin":  {tokenguard.AllScopes("admin")},
			"tenant": {tokenguard.ClaimIs("tenant", "acme")},
			"both":   {tokenguard.AllScopes("admin"), tokenguard.AllScopes("audit")},
			"none":   nil,
		},
	})(streamable(newToolServer(&ran, "admin", "tenant", "both", "none", "safe"))))
	url := e.endpoint("/mcp")
	tok := func(scope string, claims ...string) string {
		c := oauthtest.Claims{"sub": "alice", "scope": scope}
		for i := 0; i+1 < len(claims); i += 2 {
			c[claims[i]] = claims[i+1]
		}
		return e.as.Mint(c)
	}
	call := func(name string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `"}}`
	}

	// Without the endpoint's scope nothing gets through, not even a call
	// of a tool whose own requirement the token meets.
	if a := postRaw(t, url, tok("admin"), call("admin")); a.status != http.StatusForbidden || a.header.Get("WWW-Authenticate") != e.insufficient("mcp:tools") {
		t.Errorf("admin without mcp:tools: %d %s", a.status, a.header.Get("WWW-Authenticate"))
	}
	// Nor a body Protect would refuse: it is not read.
	if a := postRaw(t, url, tok("admin"), call("admin")+"garbage"); a.status != http.StatusForbidden || a.header.Get("WWW-Authenticate") != e.insufficient("mcp:tools") {
		t.Errorf("garbage without mcp:tools: %d %s", a.status, a.header.Get("WWW-Authenticate"))
	}
	if got := ran.take(); len(got) != 0 {
		t.Fatalf("ran %v", got)
	}

	headers := rawSession(t, url, tok("mcp:tools"))
	for _, tc := range []struct {
		tool, token string
		status      int
		challenge   string
		body        string
	}{
		{"safe", tok("mcp:tools"), http.StatusOK, "", ""},
		{"none", tok("mcp:tools"), http.StatusOK, "", ""},
		{"admin", tok("mcp:tools"), http.StatusForbidden, e.insufficient("admin"),
			`{"error":"insufficient_scope","error_description":"token lacks a required scope","scope":"admin"}` + "\n"},
		{"admin", tok("mcp:tools admin"), http.StatusOK, "", ""},
		{"both", tok("mcp:tools admin"), http.StatusForbidden, e.insufficient("audit"), ""},
		{"both", tok("mcp:tools audit"), http.StatusForbidden, e.insufficient("admin"), ""},
		{"both", tok("mcp:tools audit admin"), http.StatusOK, "", ""},
		{"tenant", tok("mcp:tools admin", "tenant", "other"), http.StatusForbidden,
			`Bearer realm="` + url + `", error="insufficient_scope", error_description="token does not meet this route's requirements", resource_metadata="` + e.g.ResourceMetadataURL() + `"`,
			`{"error":"insufficient_scope","error_description":"token does not meet this route's requirements"}` + "\n"},
		{"tenant", tok("mcp:tools", "tenant", "acme"), http.StatusOK, "", ""},
	} {
		a := postRaw(t, url, tc.token, call(tc.tool), headers...)
		ran := ran.take()
		if a.status != tc.status || a.header.Get("WWW-Authenticate") != tc.challenge {
			t.Errorf("%s: %d %s\nwant %d %s", tc.tool, a.status, a.header.Get("WWW-Authenticate"), tc.status, tc.challenge)
		}
		if tc.body != "" && a.body != tc.body {
			t.Errorf("%s: body %s, want %s", tc.tool, a.body, tc.body)
		}
		if ok := tc.status == http.StatusOK; ok != slices.Equal(ran, []string{tc.tool}) {
			t.Errorf("%s: status %d, ran %v", tc.tool, a.status, ran)
		}
	}
}

// A JSON-RPC batch (which the SDK accepts from 2025-03-26 clients) is
// checked as a whole: any call in it of a tool the token may not use
// refuses the whole batch, and none of its calls run.
func TestToolBatch(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	var ran ranLog
	e.mux.Handle("/mcp", tgmcp.Protect(e.g, tgmcp.Options{Tools: adminOnly})(streamable(newToolServer(&ran, "admin", "safe"))))
	url := e.endpoint("/mcp")
	user, admin := e.as.Mint(oauthtest.Claims{"sub": "alice", "scope": "profile"}), e.as.Mint(oauthtest.Claims{"sub": "alice", "scope": "admin"})
	headers := rawSession(t, url, user)
	call := func(id, name string) string {
		return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + name + `"}}`
	}

	a := postRaw(t, url, user, "["+call("1", "safe")+","+call("2", "admin")+"]", headers...)
	if a.status != http.StatusForbidden || a.header.Get("WWW-Authenticate") != e.insufficient("admin") {
		t.Errorf("batch with admin: %d %s", a.status, a.header.Get("WWW-Authenticate"))
	}
	if got := ran.take(); len(got) != 0 {
		t.Errorf("ran %v from a refused batch", got)
	}

	a = postRaw(t, url, user, "["+call("3", "safe")+`,{"jsonrpc":"2.0","id":4,"method":"tools/list"}]`, headers...)
	if a.status != http.StatusOK || !strings.Contains(a.body, `"id":3`) || !strings.Contains(a.body, `"id":4`) {
		t.Errorf("batch without admin: %d %s", a.status, a.body)
	}
	if got := ran.take(); !slices.Equal(got, []string{"safe"}) {
		t.Errorf("ran %v, want [safe]", got)
	}

	a = postRaw(t, url, admin, "["+call("5", "admin")+","+call("6", "safe")+"]", headers...)
	if a.status != http.StatusOK {
		t.Errorf("batch with the scope: %d %s", a.status, a.body)
	}
	got := ran.take()
	if slices.Sort(got); !slices.Equal(got, []string{"admin", "safe"}) {
		t.Errorf("ran %v, want [admin safe]", got)
	}
}

// The MCP handler reads the body Protect read, byte for byte, whatever
// it is; without Tools the body is not read at all.
func TestToolBodyHandedOn(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	var got []byte
	var reached bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		got, _ = io.ReadAll(r.Body)
	})
	withTools := tgmcp.Protect(e.g, tgmcp.Options{Tools: adminOnly})(h)
	without := tgmcp.Protect(e.g, tgmcp.Options{Require: []tokenguard.Requirement{tokenguard.AllScopes("profile")}})(h)
	tok := "Bearer " + e.as.Mint(oauthtest.Claims{"scope": "profile"})
	serve := func(h http.Handler, method, body string) *httptest.ResponseRecorder {
		got, reached = nil, false
		r := httptest.NewRequest(method, "/mcp", strings.NewReader(body))
		r.Header.Set("Authorization", tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for _, body := range []string{
		` {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","arguments":{"x":[1,2,{"y":null}]}}}` + "\n",
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"saf`, // truncated: for the SDK to answer
		"",
		"   ",
		`[]`,
		`{"jsonrpc":"2.0","id":1,"result":{}}`,
	} {
		if w := serve(withTools, http.MethodPost, body); w.Code != http.StatusOK || !reached || string(got) != body {
			t.Errorf("%q: status %d, reached %v, handler read %q", body, w.Code, reached, got)
		}
	}
	// Only POST bodies are read: the SDK reads messages from no other.
	admin := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin"}}`
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		if w := serve(withTools, method, admin); w.Code != http.StatusOK || string(got) != admin {
			t.Errorf("%s: status %d, handler read %q", method, w.Code, got)
		}
	}
	// Without Tools, Protect is Middleware: no body is read, none refused,
	// however large or whatever it names.
	huge := admin + strings.Repeat(" ", int(mcp.DefaultMaxRequestBodyBytes))
	for _, body := range []string{admin, admin + "garbage", huge} {
		if w := serve(without, http.MethodPost, body); w.Code != http.StatusOK || string(got) != body {
			t.Errorf("without Tools, a %d-byte body: status %d, handler read %d bytes", len(body), w.Code, len(got))
		}
	}
}

// The body is read up to MaxBodyBytes (by default the SDK's own default
// limit): a longer one gets the 413 the SDK gives it, and no tool runs;
// one of exactly the limit is read whole, so a call at its end is found.
func TestToolBodyLimit(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	var ran ranLog
	server := newToolServer(&ran, "admin", "safe")
	stateless := func() http.Handler {
		return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{Stateless: true, JSONResponse: true})
	}
	e.mux.Handle("/mcp", tgmcp.Protect(e.g, tgmcp.Options{Tools: adminOnly})(stateless()))
	e.mux.Handle("/small", tgmcp.Protect(e.g, tgmcp.Options{Tools: adminOnly, MaxBodyBytes: 1024})(stateless()))
	e.mux.Handle("/bare", stateless())
	tok := e.as.Mint(oauthtest.Claims{"sub": "alice", "scope": "profile"})
	// padded is a call of name padded in front with white space to n bytes.
	padded := func(name string, n int) string {
		call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `"}}`
		return strings.Repeat(" ", n-len(call)) + call
	}
	max := int(mcp.DefaultMaxRequestBodyBytes)
	for _, tc := range []struct {
		path   string
		body   string
		status int
		text   string
	}{
		{"/small", padded("admin", 1024), http.StatusForbidden, ""},
		{"/small", padded("admin", 1025), http.StatusRequestEntityTooLarge, "request body exceeds 1024 bytes\n"},
		{"/small", padded("safe", 1025), http.StatusRequestEntityTooLarge, "request body exceeds 1024 bytes\n"},
		{"/mcp", padded("admin", max), http.StatusForbidden, ""},
		{"/mcp", padded("admin", max+1), http.StatusRequestEntityTooLarge, "request body exceeds 4194304 bytes\n"},
		// The SDK alone answers the same.
		{"/bare", padded("admin", max+1), http.StatusRequestEntityTooLarge, "request body exceeds 4194304 bytes\n"},
	} {
		a := postRaw(t, e.endpoint(tc.path), tok, tc.body)
		if a.status != tc.status || (tc.text != "" && a.body != tc.text) {
			t.Errorf("%s, %d bytes: %d %q, want %d %q", tc.path, len(tc.body), a.status, a.body, tc.status, tc.text)
		}
		if tc.status == http.StatusForbidden && a.header.Get("WWW-Authenticate") != e.insufficient("admin") {
			t.Errorf("%s, %d bytes: challenge %s", tc.path, len(tc.body), a.header.Get("WWW-Authenticate"))
		}
		if got := ran.take(); len(got) != 0 {
			t.Errorf("%s, %d bytes: ran %v", tc.path, len(tc.body), got)
		}
	}
}

// The conformance table through Protect with tool requirements: every
// answer the table checks is still exactly the core's.
func TestConformanceWithTools(t *testing.T) {
	conformance.Run(t, func(_ testing.TB, s conformance.Setup) http.Handler {
		mux := http.NewServeMux()
		mux.Handle(conformance.PathAny, tgmcp.Protect(s.Guard, tgmcp.Options{Tools: adminOnly})(probe(s)))
		mux.Handle(conformance.PathScoped, tgmcp.Protect(s.Guard, tgmcp.Options{
			Require: []tokenguard.Requirement{tokenguard.AllScopes(conformance.ScopeRequired)},
			Tools:   adminOnly,
		})(probe(s)))
		return mux
	})
}

func TestProtectNilGuardPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Protect(nil) did not panic")
		}
	}()
	tgmcp.Protect(nil, tgmcp.Options{Tools: adminOnly})
}

// Options are copied: changing the map after Protect changes nothing.
func TestProtectCopiesOptions(t *testing.T) {
	e := newEnv(t, tokenguard.Config{})
	tools := map[string][]tokenguard.Requirement{"admin": {tokenguard.AllScopes("admin")}}
	h := tgmcp.Protect(e.g, tgmcp.Options{Tools: tools})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	delete(tools, "admin")
	r := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin"}}`)))
	r.Header.Set("Authorization", "Bearer "+e.as.Mint(oauthtest.Claims{"scope": "profile"}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("status %d after the caller's map changed, want 403", w.Code)
	}
}
