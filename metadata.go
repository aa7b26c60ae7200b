package tokenguard

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
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

// buildMetadata checks that the document can be rendered, at New.
func (g *Guard) buildMetadata() error {
	if g.resource == "" {
		return nil
	}
	g.hasMetadata = true
	_, err := g.renderMetadata()
	return err
}

// document returns the rendered document, rendering it again after the
// routes named new scopes.
func (g *Guard) document() []byte {
	if d := g.metadataDoc.Load(); d != nil && d.version == g.scopes.version() {
		return d.doc
	}
	doc, err := g.renderMetadata()
	if err != nil {
		return nil // cannot happen: New rendered the same fields
	}
	return doc
}

// renderMetadata renders the document and keeps it for document.
func (g *Guard) renderMetadata() ([]byte, error) {
	scopes, version := g.cfg.ScopesSupported, 0
	if scopes == nil {
		scopes, version = g.scopes.list()
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
		ScopesSupported:        scopes,
		BearerMethodsSupported: methods,
		ResourceName:           g.cfg.ResourceName,
		ResourceDocumentation:  g.cfg.ResourceDocumentation,
	})
	if err != nil {
		return nil, err
	}
	g.metadataDoc.Store(&renderedDoc{doc: doc, version: version})
	return doc, nil
}

// renderedDoc is the document as rendered with version of the scopes.
type renderedDoc struct {
	doc     []byte
	version int
}

// scopeRegistry holds the scopes the Guard's scope requirements name, in
// the order first seen, for scopes_supported.
type scopeRegistry struct {
	mu      sync.Mutex
	scopes  []string
	changes int // the version: how many times scopes changed
}

// maxRegisteredScopes bounds scopes_supported when it is derived.
const maxRegisteredScopes = 256

// add records scopes; it reports whether any was new, which makes a new
// version.
func (r *scopeRegistry) add(scopes []string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	added := false
	for _, s := range scopes {
		if len(r.scopes) < maxRegisteredScopes && !slices.Contains(r.scopes, s) {
			r.scopes = append(r.scopes, s)
			added = true
		}
	}
	if added {
		r.changes++
	}
	return added
}

// list returns the scopes, sorted, and their version.
func (r *scopeRegistry) list() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(slices.Values(r.scopes)), r.changes
}

func (r *scopeRegistry) version() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changes
}

// noteScopes records the scopes of reqs for scopes_supported, when
// Config.ScopesSupported leaves it to the routes.
func (g *Guard) noteScopes(reqs []Requirement) {
	if g.cfg.ScopesSupported != nil {
		return
	}
	if in := g.started(); in != nil {
		in.noteScopes(reqs)
		return
	}
	for _, req := range reqs {
		if req.scope == nil || req.scope.seenBy.Load() == g {
			continue
		}
		g.scopes.add(req.scope.names)
		req.scope.seenBy.Store(g)
	}
}

// MetadataPath is the path at which MetadataHandler belongs: the RFC 9728
// well-known location for the resource, with the resource's path inserted
// after it (resource https://api.example.com/v2/mcp →
// /.well-known/oauth-protected-resource/v2/mcp). It is "" when the Guard
// has no resource identifier (only Config.Issuers, no Resource): there is
// then no document to serve, and mux.Handle("", ...) would panic, so check
// it before you mount MetadataHandler.
func (g *Guard) MetadataPath() string {
	if in := g.started(); in != nil {
		return in.MetadataPath()
	}
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
// Config.ScopesSupported, or else the scopes the Guard's scope
// requirements have named so far), bearer_methods_supported (from the enabled
// methods), resource_name and resource_documentation. Mount it at
// MetadataPath; every challenge's resource_metadata points there. Browser
// clients may read it from any origin (CORS), and caches may keep it for
// an hour. Without a resource identifier it answers 404.
func (g *Guard) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.startup != nil {
			if in := g.startup.guard(); in != nil {
				in.MetadataHandler().ServeHTTP(w, r)
				return
			}
			// The document names the authorization servers discovery has
			// not yet confirmed.
			w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds(g.startup.retryIn(g.now()))))
			http.Error(w, "starting: authorization server not reached yet", http.StatusServiceUnavailable)
			return
		}
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
		if !g.hasMetadata {
			http.NotFound(w, r)
			return
		}
		doc := g.document()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(metadataMaxAge/time.Second)))
		h.Set("Content-Length", strconv.Itoa(len(doc)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(doc)
		}
	})
}
