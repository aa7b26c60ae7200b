package tokenguard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
)

func TestMetadataHandler(t *testing.T) {
	as := shared(t)
	mux := http.NewServeMux()
	api := httptest.NewUnstartedServer(mux)
	resource := "http://" + api.Listener.Addr().String() + "/v2/mcp"
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		Issuer: as.Issuer, Resource: resource, InsecureAllowHTTP: true,
		ScopesSupported: []string{"mcp:tools", "mcp:admin"}, ResourceName: "Orders MCP", ResourceDocumentation: "https://docs.example.com/mcp",
		AllowQueryToken: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got, want := g.MetadataPath(), "/.well-known/oauth-protected-resource/v2/mcp"; got != want {
		t.Fatalf("MetadataPath %q, want %q", got, want)
	}
	mux.Handle(g.MetadataPath(), g.MetadataHandler())
	mux.Handle("/v2/mcp", g.Handler(http.NotFoundHandler()))
	api.Start()
	defer api.Close()

	// The challenge points at the served document.
	resp, err := http.Get(api.URL + "/v2/mcp")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rm := api.URL + "/.well-known/oauth-protected-resource/v2/mcp"
	if got := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(got, `resource_metadata="`+rm+`"`) {
		t.Fatalf("challenge %d %s, want resource_metadata=%s", resp.StatusCode, got, rm)
	}

	req, _ := http.NewRequest("GET", rm, nil)
	req.Header.Set("Origin", "https://app.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET metadata: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Cache-Control") != "public, max-age=3600" {
		t.Errorf("headers %v", resp.Header)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"resource":                 resource,
		"authorization_servers":    []any{as.Issuer},
		"scopes_supported":         []any{"mcp:tools", "mcp:admin"},
		"bearer_methods_supported": []any{"header", "query"},
		"resource_name":            "Orders MCP",
		"resource_documentation":   "https://docs.example.com/mcp",
	}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("document\n got %v\nwant %v", doc, want)
	}

	// Preflight and other methods.
	req, _ = http.NewRequest("OPTIONS", rm, nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = http.Post(rm, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

// A Guard built from a served document serves the same resource and
// points at the same URL.
func TestMetadataHandlerRootResource(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{Issuer: as.Issuer, Resource: "https://api.example.com"})
	if got := g.MetadataPath(); got != "/.well-known/oauth-protected-resource" {
		t.Errorf("MetadataPath %q", got)
	}
	w := httptest.NewRecorder()
	g.MetadataHandler().ServeHTTP(w, httptest.NewRequest("GET", g.MetadataPath(), nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"resource":"https://api.example.com"`) || !strings.Contains(w.Body.String(), `"bearer_methods_supported":["header"]`) {
		t.Errorf("%d %s", w.Code, w.Body.String())
	}
}
