package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// exchange is one HTTP round trip an MCP client made.
type exchange struct {
	Method string
	Status int
	Header http.Header
}

// recorder is an MCP client's http.RoundTripper: it sends its token, if
// any, as a bearer token and records every answer, so that the HTTP
// status and challenge behind a client error can be read.
type recorder struct {
	mu    sync.Mutex
	token string
	log   []exchange
}

func (rt *recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.mu.Lock()
	tok := rt.token
	rt.mu.Unlock()
	if tok != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		rt.mu.Lock()
		rt.log = append(rt.log, exchange{Method: r.Method, Status: res.StatusCode, Header: res.Header.Clone()})
		rt.mu.Unlock()
	}
	return res, err
}

// first returns the first recorded exchange, and false if there is none.
func (rt *recorder) first() (exchange, bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.log) == 0 {
		return exchange{}, false
	}
	return rt.log[0], true
}

// connect opens a session with the MCP server at endpoint using the SDK's
// own client over streamable HTTP, sending token (none if ""). On error
// the recorder still tells what the server answered.
func connect(ctx context.Context, endpoint, token string) (*mcp.ClientSession, *recorder, error) {
	rt := &recorder{token: token}
	c := mcp.NewClient(&mcp.Implementation{Name: "mcpserver-check", Version: "v1.0.0"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:             endpoint,
		HTTPClient:           &http.Client{Transport: rt},
		MaxRetries:           -1,
		DisableStandaloneSSE: true,
	}, nil)
	return cs, rt, err
}

// callTool calls the tool name without arguments and decodes its
// structured output into out.
func callTool(ctx context.Context, cs *mcp.ClientSession, name string, out any) error {
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: name})
	if err != nil {
		return err
	}
	if res.IsError {
		return fmt.Errorf("tool %s failed: %s", name, contentText(res.Content))
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func contentText(cs []mcp.Content) string {
	for _, c := range cs {
		if t, ok := c.(*mcp.TextContent); ok {
			return t.Text
		}
	}
	return ""
}

// resourceDocument is the part of an RFC 9728 document the checks read.
type resourceDocument struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported"`
}

// fetchMetadata GETs an RFC 9728 document.
func fetchMetadata(ctx context.Context, url string) (resourceDocument, error) {
	var doc resourceDocument
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return doc, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return doc, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		return doc, fmt.Errorf("GET %s: %d %s", url, res.StatusCode, res.Header.Get("Content-Type"))
	}
	err = json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&doc)
	return doc, err
}
