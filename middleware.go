package tokenguard

import (
	"net/http"
)

// Handler returns next wrapped so that it runs only for requests with a
// valid bearer token, with the Principal in the request's context
// (PrincipalFrom). Any other request gets the RFC 6750 answer: 401 with a
// challenge, 400 for a malformed request, or 503 with Retry-After when the
// authorization server's keys cannot be had (fail closed).
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.Authenticate(r)
		if err != nil {
			g.WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// RequireScopes returns middleware that lets a request through only when its
// token grants every one of scopes; otherwise it answers 403
// insufficient_scope naming them, so the client can ask for them. It
// authenticates the request itself when no Handler of the same Guard did
// before it, so a route is never left open by a missing Handler, and a
// Principal from another Guard (another issuer or audience) is not trusted.
func (g *Guard) RequireScopes(scopes ...string) func(http.Handler) http.Handler {
	required := append([]string(nil), scopes...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := g.Authorize(r, required...)
			if err != nil {
				g.WriteError(w, r, err)
				return
			}
			if cur, _ := PrincipalFrom(r.Context()); cur != p {
				r = r.WithContext(WithPrincipal(r.Context(), p))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Authorize returns the request's Principal when its token grants every one
// of scopes. It reuses the Principal a Handler of this Guard put in the
// request's context and otherwise authenticates the request. It writes
// nothing; on failure the error is an *Error for WriteError (403
// insufficient_scope when only scopes are missing). Adapters use it for
// per-route requirements.
func (g *Guard) Authorize(r *http.Request, scopes ...string) (*Principal, error) {
	p, ok := PrincipalFrom(r.Context())
	if !ok || p.guard != g {
		var err error
		if p, err = g.Authenticate(r); err != nil {
			return nil, err
		}
	}
	for _, s := range scopes {
		if !p.HasScope(s) {
			return nil, errInsufficientScope(append([]string(nil), scopes...))
		}
	}
	return p, nil
}
