package tgchi_test

import (
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest/conformance"
)

// probe is the conformance handler: it reports the Principal from the
// request's context.
func probe(s conformance.Setup) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := tokenguard.PrincipalFrom(r.Context())
		s.Probe(w, p)
	}
}

// The conformance table through chi, each way of attaching the guard.
func TestConformance(t *testing.T) {
	builds := []struct {
		name  string
		build conformance.Build
	}{
		{"Use on the router", func(_ testing.TB, s conformance.Setup) http.Handler {
			r := chi.NewRouter()
			r.Use(s.Guard.Handler)
			r.Get(conformance.PathAny, probe(s))
			r.With(s.Guard.RequireScopes(conformance.ScopeRequired)).Get(conformance.PathScoped, probe(s))
			return r
		}},
		{"Use in a group", func(_ testing.TB, s conformance.Setup) http.Handler {
			r := chi.NewRouter()
			r.Group(func(r chi.Router) {
				r.Use(s.Guard.Handler)
				r.Get(conformance.PathAny, probe(s))
				r.With(s.Guard.RequireScopes(conformance.ScopeRequired)).Get(conformance.PathScoped, probe(s))
			})
			return r
		}},
		{"per route, no Handler before RequireScopes", func(_ testing.TB, s conformance.Setup) http.Handler {
			r := chi.NewRouter()
			r.With(s.Guard.Handler).Get(conformance.PathAny, probe(s))
			r.With(s.Guard.RequireScopes(conformance.ScopeRequired)).Get(conformance.PathScoped, probe(s))
			return r
		}},
		{"mounted router", func(_ testing.TB, s conformance.Setup) http.Handler {
			sub := chi.NewRouter()
			sub.Use(s.Guard.Handler)
			sub.Get(conformance.PathAny, probe(s))
			sub.With(s.Guard.Require(tokenguard.AllScopes(conformance.ScopeRequired))).Get(conformance.PathScoped, probe(s))
			r := chi.NewRouter()
			r.Mount("/", sub)
			return r
		}},
	}
	for _, b := range builds {
		t.Run(b.name, func(t *testing.T) { conformance.Run(t, b.build) })
	}
}
