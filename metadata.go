package tokenguard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// metadataMaxAge is how long clients and proxies may cache the document.
const metadataMaxAge = time.Hour

// resourceDocument is this resource's RFC 9728 §2 metadata.
type resourceDocument struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

// buildMetadata renders the document once, at New.
func (g *Guard) buildMetadata() error {
	if g.resource == "" {
		return nil
	}
	methods := []string{"header"}
	if g.cfg.AllowFormToken {
		methods = append(methods, "body")
	}
	if g.cfg.AllowQueryToken {
		methods = append(methods, "query")
	}
	doc, err := json.Marshal(resourceDocument{
		Resource:               g.resource,
		AuthorizationServers:   g.issuerOrder,
		ScopesSupported:        g.cfg.ScopesSupported,
		BearerMethodsSupported: methods,
		ResourceName:           g.cfg.ResourceName,
		ResourceDocumentation:  g.cfg.ResourceDocumentation,
	})
	if err != nil {
		return err
	}
	g.metadataDoc = doc
	return nil
}

// MetadataPath is the path at which MetadataHandler belongs: the RFC 9728
// well-known location for the resource, with the resource's path inserted
// after it (resource https://api.example.com/v2/mcp →
// /.well-known/oauth-protected-resource/v2/mcp). It is "" when the Guard
// has no resource identifier (only Config.Issuers, no Resource): there is
// then no document to serve, and mux.Handle("", ...) would panic, so check
// it before you mount MetadataHandler.
func (g *Guard) MetadataPath() string {
	if g.resourceMetadataURL == "" {
		return ""
	}
	u, err := url.Parse(g.resourceMetadataURL)
	if err != nil {
		return ""
	}
	return u.EscapedPath()
}

// MetadataHandler serves this resource's protected-resource metadata (RFC
// 9728): resource, authorization_servers, scopes_supported (from
// Config.ScopesSupported), bearer_methods_supported (from the enabled
// methods), resource_name and resource_documentation. Mount it at
// MetadataPath; every challenge's resource_metadata points there. Browser
// clients may read it from any origin (CORS), and caches may keep it for
// an hour. Without a resource identifier it answers 404.
func (g *Guard) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Max-Age", strconv.Itoa(int(metadataMaxAge/time.Second)))
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if g.metadataDoc == nil {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(metadataMaxAge/time.Second)))
		h.Set("Content-Length", strconv.Itoa(len(g.metadataDoc)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(g.metadataDoc)
		}
	})
}
