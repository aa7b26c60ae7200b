package tgmcp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"

	tgmcp "github.com/tokenguard/tokenguard/adapters/mcp"
)

// env is an authorization server, and an MCP server on loopback whose
// resource is URL+"/mcp" and which serves its own RFC 9728 document.
type env struct {
	as  *oauthtest.Server
	g   *tokenguard.Guard
	srv *httptest.Server
	mux *http.ServeMux
}

// endpoint returns the absolute URL of path on the MCP server.
func (e *env) endpoint(path string) string { return e.srv.URL + path }

// newEnv starts the servers and a Guard for resource URL+"/mcp"; it
// mounts the metadata handler and nothing else.
func newEnv(t testing.TB, cfg tokenguard.Config) *env {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	resource := srv.URL + "/mcp"
	as := oauthtest.NewServer(oauthtest.Options{Resource: resource})
	t.Cleanup(as.Close)
	cfg.Issuer = as.Issuer
	cfg.Resource = resource
	cfg.InsecureAllowHTTP = true
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	mux.Handle(g.MetadataPath(), g.MetadataHandler())
	return &env{as: as, g: g, srv: srv, mux: mux}
}

// whoami is what the test tool reports about its caller.
type whoami struct {
	// From req.Extra.TokenInfo, as the SDK hands it over.
	UserID string   `json:"user_id"`
	Scopes []string `json:"scopes"`
	Issuer string   `json:"iss"`
	Client string   `json:"client_id"`
	Kind   string   `json:"kind"`
	Expiry int64    `json:"exp"`
	// ExtraSub is TokenInfo.Extra[ExtraSubject], the bare sub.
	ExtraSub string `json:"extra_sub"`
	// From PrincipalFrom(req).
	Subject string `json:"sub"`
	// From tokenguard.PrincipalFrom(ctx) of the tool's context.
	ContextScopes []string `json:"ctx_scopes"`
}

// newMCPServer is an MCP server with the whoami tool.
func newMCPServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "tgmcp-test", Version: "v0.0.1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "the caller, as the token describes it"},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoami, error) {
			var out whoami
			if req.Extra != nil && req.Extra.TokenInfo != nil { // Extra is nil over non-HTTP transports
				ti := req.Extra.TokenInfo
				out.UserID, out.Scopes = ti.UserID, ti.Scopes
				out.Issuer, _ = ti.Extra[tgmcp.ExtraIssuer].(string)
				out.ExtraSub, _ = ti.Extra[tgmcp.ExtraSubject].(string)
				out.Client, _ = ti.Extra[tgmcp.ExtraClientID].(string)
				out.Kind, _ = ti.Extra[tgmcp.ExtraKind].(string)
				out.Expiry = ti.Expiration.Unix()
			}
			if p, ok := tgmcp.PrincipalFrom(req); ok {
				out.Subject = p.Subject
			}
			if p, ok := tokenguard.PrincipalFrom(ctx); ok {
				out.ContextScopes = p.Scopes
			}
			return nil, out, nil
		})
	return s
}

// streamable is the SDK's streamable HTTP handler for s.
func streamable(s *mcp.Server) http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil)
}

// exchange is one HTTP round trip the MCP client made.
type exchange struct {
	method, sessionID string
	status            int
	header            http.Header
}

// recorder is the MCP client's RoundTripper: it sends *token (if any) as a
// bearer token and records every answer. Tests may change the token
// between calls.
type recorder struct {
	mu    sync.Mutex
	token string
	log   []exchange
}

func (rt *recorder) setToken(tok string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.token = tok
}

func (rt *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	tok := rt.token
	rt.mu.Unlock()
	r = r.Clone(r.Context())
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		rt.mu.Lock()
		rt.log = append(rt.log, exchange{r.Method, r.Header.Get("Mcp-Session-Id"), res.StatusCode, res.Header.Clone()})
		rt.mu.Unlock()
	}
	return res, err
}

// first returns the first recorded exchange.
func (rt *recorder) first(t *testing.T) exchange {
	t.Helper()
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.log) == 0 {
		t.Fatal("the client made no request")
	}
	return rt.log[0]
}

// connect opens an MCP client session to url with the SDK's own client
// over streamable HTTP, sending token (none if "").
func connect(t *testing.T, url, token string) (*mcp.ClientSession, *recorder, error) {
	t.Helper()
	rt := &recorder{token: token}
	c := mcp.NewClient(&mcp.Implementation{Name: "tgmcp-test-client", Version: "v0.0.1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint:   url,
		HTTPClient: &http.Client{Transport: rt},
		MaxRetries: -1,
	}, nil)
	if err == nil {
		t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, rt, err
}

// callWhoami calls the whoami tool and decodes its structured output.
func callWhoami(t *testing.T, cs *mcp.ClientSession) whoami {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		t.Fatalf("CallTool: %v", err)
	}
	if res.IsError {
		t.Fatalf("whoami failed: %+v", res.Content)
	}
	var out whoami
	if err := remarshal(res.StructuredContent, &out); err != nil {
		t.Fatalf("whoami output %v: %v", res.StructuredContent, err)
	}
	return out
}

// refusedCall calls whoami on cs, which must fail, and returns the
// exchange of the POST that carried the call.
func refusedCall(t *testing.T, cs *mcp.ClientSession, rec *recorder) exchange {
	t.Helper()
	return refusedCallTo(t, cs, rec, "whoami")
}

// refusedCallTo calls the tool name on cs, which must fail, and returns
// the exchange of the POST that carried the call.
func refusedCallTo(t *testing.T, cs *mcp.ClientSession, rec *recorder, name string) exchange {
	t.Helper()
	rec.mu.Lock()
	n := len(rec.log)
	rec.mu.Unlock()
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: name}); err == nil {
		t.Fatalf("CallTool(%s) succeeded", name)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, x := range rec.log[n:] {
		if x.method == http.MethodPost {
			return x
		}
	}
	t.Fatal("CallTool sent no POST")
	return exchange{}
}

// remarshal decodes v (as the SDK's client decoded it) into out.
func remarshal(v any, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// ranLog records which tools of a test server ran.
type ranLog struct {
	mu  sync.Mutex
	ran []string
}

func (l *ranLog) add(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ran = append(l.ran, name)
}

// take returns the tools that ran since the last take.
func (l *ranLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ran := l.ran
	l.ran = nil
	return ran
}

// newToolServer is an MCP server with the tools names, each of which
// records in log that it ran and answers with its name.
func newToolServer(log *ranLog, names ...string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "tgmcp-tools-test", Version: "v0.0.1"}, nil)
	for _, name := range names {
		mcp.AddTool(s, &mcp.Tool{Name: name},
			func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
				log.add(name)
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name}}}, nil, nil
			})
	}
	return s
}

// answer is one raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   string
}

// postRaw POSTs body to url as an MCP client would, with the bearer token
// and the extra headers (name, value pairs).
func postRaw(t *testing.T, url, token, body string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return answer{res.StatusCode, res.Header, string(b)}
}

// rawSession opens a stateful session on url as a 2025-03-26 client
// (whose JSON-RPC batches the SDK still accepts) and returns the headers
// its later requests carry.
func rawSession(t *testing.T, url, token string) []string {
	t.Helper()
	const version = "2025-03-26"
	a := postRaw(t, url, token, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+version+`","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`)
	id := a.header.Get("Mcp-Session-Id")
	if a.status != http.StatusOK || id == "" {
		t.Fatalf("initialize: %d %q (session %q)", a.status, a.body, id)
	}
	headers := []string{"Mcp-Session-Id", id, "Mcp-Protocol-Version", version}
	if a := postRaw(t, url, token, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, headers...); a.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d %q", a.status, a.body)
	}
	return headers
}
