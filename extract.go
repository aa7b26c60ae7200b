package tokenguard

import (
	"errors"
	"mime"
	"net/http"
	"strings"
)

// maxFormBytes bounds the form body read for an access_token parameter.
const maxFormBytes = 256 << 10

// extract finds the bearer token per RFC 6750 §2. A request with a token in
// more than one place, or in one place twice, is invalid_request.
func (g *Guard) extract(r *http.Request) (string, *Error) {
	var token string
	found := 0

	switch vals := r.Header.Values("Authorization"); len(vals) {
	case 0:
	case 1:
		scheme, rest, _ := strings.Cut(vals[0], " ")
		// The scheme is case-insensitive (RFC 9110 §11.1). Another scheme is
		// not a bearer token: the request simply has none.
		if strings.EqualFold(scheme, "Bearer") || g.dpop != nil && strings.EqualFold(scheme, "DPoP") {
			token = strings.TrimLeft(rest, " ")
			if token == "" {
				return "", errInvalidRequest("empty bearer token", errors.New("Authorization: "+scheme+" with no token"))
			}
			found++
		}
	default:
		return "", errInvalidRequest("more than one Authorization header", nil)
	}

	for _, src := range g.cfg.TokenSources {
		if src == nil {
			continue
		}
		switch vals := src(r); len(vals) {
		case 0:
		case 1:
			if vals[0] == "" {
				return "", errInvalidRequest("empty token", errors.New("a TokenSource found an empty token"))
			}
			token = vals[0]
			found++
		default:
			return "", errInvalidRequest("token sent more than once", errors.New("a TokenSource found more than one token"))
		}
	}

	// The body is read only when no other place carried a token, so handlers
	// of header-authenticated requests keep their raw body, and only up to
	// maxFormBytes, so an unauthenticated request cannot make us buffer
	// megabytes.
	if g.cfg.AllowFormToken && found == 0 && r.Method != http.MethodGet && r.Body != nil {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
			r.Body = http.MaxBytesReader(nil, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				return "", errInvalidRequest("malformed form body", err)
			}
			switch vals := r.PostForm["access_token"]; len(vals) {
			case 0:
			case 1:
				token = vals[0]
				found++
			default:
				return "", errInvalidRequest("access_token repeated", nil)
			}
		}
	}

	if g.cfg.AllowQueryToken {
		switch vals := r.URL.Query()["access_token"]; len(vals) {
		case 0:
		case 1:
			token = vals[0]
			found++
		default:
			return "", errInvalidRequest("access_token repeated", nil)
		}
	}

	switch {
	case found == 0:
		return "", errNoToken()
	case found > 1:
		return "", errInvalidRequest("token sent by more than one method", nil)
	}
	if len(token) > g.maxTokenBytes {
		return "", errInvalidToken("token too large", nil)
	}
	// The b64token syntax is checked by judgeToken (checkSyntax), after the
	// verified-token cache: a token found there passed it when cached.
	return token, nil
}

// A TokenSource finds a token in a place of the request RFC 6750 does not
// name, for Config.TokenSources: it returns every value it found there
// (none, one, or several, which is a malformed request). Whatever it
// returns is checked exactly as a token from the Authorization header is:
// b64token syntax, Config.MaxTokenBytes, and a request that carries a
// token in two places at once gets 400 invalid_request. It must not
// consume the request body.
type TokenSource func(r *http.Request) []string

// CookieToken finds the token in the cookie called name (empty cookies
// are ignored, as a cleared cookie is). Browsers send cookies with every
// request to the site, cross-site ones included, so a cookie-borne token
// is open to cross-site request forgery: set SameSite=Strict or Lax on the
// cookie, or check an anti-CSRF token on state-changing routes.
func CookieToken(name string) TokenSource {
	return func(r *http.Request) []string {
		var out []string
		for _, c := range r.CookiesNamed(name) {
			if c.Value != "" {
				out = append(out, c.Value)
			}
		}
		return out
	}
}

// WebSocketProtocolToken finds the token in a WebSocket subprotocol of
// the form prefix+token in Sec-WebSocket-Protocol, for browser clients,
// which cannot set an Authorization header on a WebSocket handshake (for
// instance prefix "base64url.bearer.authorization.k8s.io.", as Kubernetes
// does, or "access_token."). The server must not select that subprotocol
// in its answer: that would echo the token.
func WebSocketProtocolToken(prefix string) TokenSource {
	return func(r *http.Request) []string {
		var out []string
		for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
			for p := range strings.SplitSeq(v, ",") {
				if t, ok := strings.CutPrefix(strings.TrimSpace(p), prefix); ok && prefix != "" {
					out = append(out, t)
				}
			}
		}
		return out
	}
}

// checkSyntax answers 400 for a token that is not a b64token.
func checkSyntax(token string) *Error {
	if !isB64Token(token) {
		return errInvalidRequest("token has characters a bearer token cannot have", nil)
	}
	return nil
}

// isB64Token checks the b64token syntax of RFC 6750 §2.1:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	// Eight at a time, one branch each: the check runs over every byte of
	// every token (a third faster on a 900-byte RS256 token).
	for ; i+8 <= len(s); i += 8 {
		c := s[i : i+8]
		if b64TokenChar[c[0]]&b64TokenChar[c[1]]&b64TokenChar[c[2]]&b64TokenChar[c[3]]&
			b64TokenChar[c[4]]&b64TokenChar[c[5]]&b64TokenChar[c[6]]&b64TokenChar[c[7]] == 0 {
			break
		}
	}
	for i < len(s) && b64TokenChar[s[i]] == 1 {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// b64TokenChar is 1 for the b64token characters before the '=' padding
// and 0 for every other byte.
var b64TokenChar = func() (t [256]uint8) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/") {
		t[c] = 1
	}
	return t
}()
