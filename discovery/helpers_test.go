package discovery_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// route is one canned answer of a fake server. In body, BASE stands for the
// server's own origin (scheme://host:port).
type route struct {
	status  int    // zero means 200
	ctype   string // empty means application/json; "-" sends none
	body    string
	handler http.HandlerFunc // when set, answers instead of the fields above
}

// fakeServer serves routes keyed by request URI and records every request.
type fakeServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newFake(t *testing.T, tls bool, routes map[string]route) *fakeServer {
	t.Helper()
	f := &fakeServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen = append(f.seen, r.URL.RequestURI())
		f.mu.Unlock()
		rt, ok := routes[r.URL.RequestURI()]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if rt.handler != nil {
			rt.handler(w, r)
			return
		}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		switch rt.ctype {
		case "":
			w.Header().Set("Content-Type", "application/json")
		case "-":
		default:
			w.Header().Set("Content-Type", rt.ctype)
		}
		if rt.status != 0 {
			w.WriteHeader(rt.status)
		}
		_, _ = w.Write([]byte(strings.ReplaceAll(rt.body, "BASE", scheme+"://"+r.Host)))
	})
	if tls {
		f.Server = httptest.NewTLSServer(h)
	} else {
		f.Server = httptest.NewServer(h)
	}
	t.Cleanup(f.Close)
	return f
}

// requests returns the request URIs received so far, in order.
func (f *fakeServer) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}
