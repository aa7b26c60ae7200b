package tokenguard

import (
	"errors"
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
		g.sendNonce(w, r)
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// Optional is Handler for routes that serve anonymous callers too: a
// request with no token at all goes on to next without a Principal
// (PrincipalFrom reports false), while a request with a token is judged
// exactly as by Handler, so a bad, expired or forged token is still
// refused and never passes as anonymous. A token in a scheme other than
// Bearer counts as none, as with Handler. Requirements (Require,
// RequireScopes) after it still refuse the anonymous request with 401.
func (g *Guard) Optional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := g.Authenticate(r)
		switch {
		case err == nil:
			g.sendNonce(w, r)
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		case errors.Is(err, ErrNoToken):
			next.ServeHTTP(w, r)
		default:
			g.WriteError(w, r, err)
		}
	})
}

// RequireScopes is Require(AllScopes(scopes...)): the request's token must
// grant every one of scopes, or the answer is 403 insufficient_scope naming
// them, so the client can ask for them.
func (g *Guard) RequireScopes(scopes ...string) func(http.Handler) http.Handler {
	return g.Require(AllScopes(scopes...))
}

// Authorize is Check(r, AllScopes(scopes...)).
func (g *Guard) Authorize(r *http.Request, scopes ...string) (*Principal, error) {
	return g.Check(r, AllScopes(scopes...))
}

// sendNonce gives an accepted DPoP request the current nonce, so that the
// client moves to it before the one it used expires (RFC 9449 §8.2).
func (g *Guard) sendNonce(w http.ResponseWriter, r *http.Request) {
	if n := g.AcceptedNonce(r); n != "" {
		w.Header().Set("DPoP-Nonce", n)
	}
}

// AcceptedNonce is the DPoP-Nonce to send with the answer to r once it is
// accepted: the current nonce when r used the DPoP scheme and the Guard
// issues nonces (Config.DPoP.NonceKey), else "". Handler, Optional and
// Require send it; adapters that answer themselves send it too, so that
// clients move to a new nonce before theirs expires (RFC 9449 §8.2).
func (g *Guard) AcceptedNonce(r *http.Request) string {
	if n := g.DPoPNonce(); n != "" && usesDPoP(r) {
		return n
	}
	return ""
}
