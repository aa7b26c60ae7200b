package oauthtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Client authentication methods, as named by RFC 7591 and recorded in
// IntrospectionCall.AuthMethod; "bearer" has no registered name.
const (
	authBasic  = "client_secret_basic"
	authPost   = "client_secret_post"
	authNone   = "none"
	authBearer = "bearer"
)

// An IntrospectionCall describes one call to the introspection endpoint that
// reached it: not replaced by a [Fault] and made with POST. It holds no token.
// See [Server.IntrospectionCalls].
type IntrospectionCall struct {
	// ClientID is the id of the authenticated client: the client of the
	// client_secret_basic or client_secret_post credentials, or the client_id
	// of a bearer token. It is "" when the call was not authenticated:
	// Options.IntrospectionAuth is "none", or authentication failed.
	ClientID string

	// AuthMethod is the client authentication the call used, or tried when
	// it failed: "client_secret_basic" (an Authorization header of the Basic
	// scheme), "client_secret_post" (client_secret in the body), "bearer"
	// (an Authorization header of the Bearer scheme), "none" (client_id
	// alone in the body, or any call when Options.IntrospectionAuth is
	// "none"), or "" (no credentials, or an Authorization header of another
	// scheme).
	AuthMethod string

	// TokenTypeHint is the token_type_hint parameter, "" when absent or when
	// the body could not be read.
	TokenTypeHint string

	// Status is the status code of the answer: 200, 400 (a malformed call),
	// 401 (client authentication failed) or 429 (rate limited).
	Status int

	// Active is the "active" member of a 200 answer, false otherwise.
	Active bool
}

// IntrospectionCalls returns the calls the introspection endpoint has
// answered since the server started or [Server.ResetCounts] was last called,
// oldest first, including those answered with an error (see
// [IntrospectionCall]). Calls replaced by a [Fault] or made with a method
// other than POST are counted by [Server.Requests] but not listed here.
func (s *Server) IntrospectionCalls() []IntrospectionCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// introspectionAuthMethods is introspection_endpoint_auth_methods_supported.
// Bearer tokens are accepted with "" but have no registered name to advertise.
func (s *Server) introspectionAuthMethods() []string {
	switch m := s.opts.IntrospectionAuth; m {
	case "":
		return []string{authBasic, authPost}
	case authNone:
		return []string{authBasic, authPost, authNone}
	default:
		return []string{m}
	}
}

// serveIntrospect implements RFC 7662 token introspection.
func (s *Server) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	var call IntrospectionCall
	resp, terr := s.introspect(w, r, &call)
	if terr != nil {
		call.Status = terr.status
	} else {
		call.Status = http.StatusOK
		call.Active = resp["active"] == true
	}
	// Recorded before the answer is written, so a client that has its answer
	// finds the call listed.
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	if terr != nil {
		terr.write(w)
		return
	}
	if wantsJWTResponse(r) {
		s.writeJWTResponse(w, call.ClientID, resp)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// jwtResponseType is the media type of an RFC 9701 signed answer.
const jwtResponseType = "application/token-introspection+jwt"

// wantsJWTResponse reports whether the call asked for an RFC 9701 answer.
func wantsJWTResponse(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == jwtResponseType {
			return true
		}
	}
	return false
}

// writeJWTResponse answers with an RFC 9701 §5 JWT signed by the default
// key: iss this server, aud the calling client, iat now, and the answer in
// token_introspection.
func (s *Server) writeJWTResponse(w http.ResponseWriter, clientID string, resp map[string]any) {
	k := s.signingKeyFor("", "")
	claims := map[string]any{"iss": s.Issuer, "iat": s.opts.Now().Unix(), "token_introspection": resp}
	if clientID != "" {
		claims["aud"] = clientID
	}
	tok, err := SignJWT(map[string]any{"alg": k.alg, "kid": k.kid, "typ": "token-introspection+jwt"}, claims, k.signer, k.alg)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	w.Header().Set("Content-Type", jwtResponseType)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, tok)
}

// introspect checks, in this order: the body, client authentication, the
// rate limit, the parameters. It returns the response of a successful call.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request, call *IntrospectionCall) (map[string]any, *tokenError) {
	if s.opts.IntrospectionAuth == authNone {
		call.AuthMethod = authNone
	} else {
		call.AuthMethod = headerAuthMethod(r)
	}
	params, terr := readParams(w, r)
	if terr != nil {
		return nil, terr
	}
	call.TokenTypeHint = params.Get("token_type_hint")
	if terr := s.authenticateIntrospection(r, params, call); terr != nil {
		return nil, terr
	}
	if terr := s.rateLimit(call.ClientID); terr != nil {
		return nil, terr
	}
	if s.opts.RejectTokenTypeHint {
		for _, name := range slices.Sorted(maps.Keys(params)) {
			switch name {
			case "token", "client_id", "client_secret":
			default:
				return nil, invalidRequest("parameter %s is not supported", name)
			}
		}
	}
	token := params.Get("token")
	if token == "" {
		return nil, invalidRequest("token missing")
	}
	claims := s.activeClaims(token)
	if claims == nil {
		return map[string]any{"active": false}, nil // RFC 7662 §2.2: nothing more
	}
	resp := map[string]any{"token_type": "Bearer"}
	maps.Copy(resp, claims)
	resp["active"] = true
	return resp, nil
}

// headerAuthMethod names the client authentication of the Authorization
// header, "" when there is none or it has another scheme.
func headerAuthMethod(r *http.Request) string {
	if _, _, ok := r.BasicAuth(); ok {
		return authBasic
	}
	if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		return authBearer
	}
	return ""
}

// readParams reads the parameters of an introspection call from a form body,
// or from a JSON object whose members are all strings, as the seed API
// accepts.
func readParams(w http.ResponseWriter, r *http.Request) (url.Values, *tokenError) {
	switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt {
	case "application/x-www-form-urlencoded":
		return parseForm(w, r)
	case "application/json":
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil || obj == nil {
			return nil, invalidRequest("body must be a JSON object")
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, invalidRequest("body must be a single JSON object")
		}
		params := url.Values{}
		for name, v := range obj {
			str, ok := v.(string)
			if !ok {
				return nil, invalidRequest("parameter %s must be a string", name)
			}
			params.Set(name, str)
		}
		return params, nil
	}
	return nil, invalidRequest("Content-Type must be application/x-www-form-urlencoded or application/json")
}

// authenticateIntrospection enforces Options.IntrospectionAuth and fills in
// call.ClientID, and call.AuthMethod for credentials in the body.
func (s *Server) authenticateIntrospection(r *http.Request, params url.Values, call *IntrospectionCall) *tokenError {
	mode := s.opts.IntrospectionAuth
	if mode == authNone {
		return nil
	}
	if call.AuthMethod == authBearer {
		if mode != "" {
			return invalidClient("this endpoint accepts " + mode + " only")
		}
		return s.authenticateBearer(r, params, call)
	}
	if r.Header.Get("Authorization") == "" {
		if _, ok := params["client_secret"]; ok {
			call.AuthMethod = authPost
		} else if _, ok := params["client_id"]; ok {
			call.AuthMethod = authNone
		}
	}
	if mode != "" && call.AuthMethod != mode && call.AuthMethod != "" {
		return invalidClient("this endpoint accepts " + mode + " only")
	}
	c, terr := s.authenticate(r, params)
	if terr != nil {
		return terr
	}
	if c.secret == "" {
		return invalidClient("a public client cannot use the introspection endpoint")
	}
	call.ClientID = c.id
	return nil
}

// authenticateBearer accepts an active access token of this server issued to
// a registered client.
func (s *Server) authenticateBearer(r *http.Request, params url.Values, call *IntrospectionCall) *tokenError {
	if _, ok := params["client_secret"]; ok {
		return invalidRequest("more than one client authentication method")
	}
	_, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	claims := s.activeClaims(strings.TrimLeft(token, " "))
	if claims == nil {
		return bearerRejected("bearer token is not active")
	}
	id, _ := claims["client_id"].(string)
	s.mu.Lock()
	c := s.clients[id]
	s.mu.Unlock()
	if c == nil {
		return bearerRejected("bearer token was not issued to a registered client")
	}
	if bodyID, ok := params["client_id"]; ok && bodyID[0] != id {
		return invalidRequest("client_id does not match the bearer token")
	}
	call.ClientID = id
	return nil
}

func bearerRejected(description string) *tokenError {
	e := invalidClient(description)
	e.header = http.Header{"WWW-Authenticate": {`Bearer realm="oauthtest", error="invalid_token"`}}
	return e
}

// rateBucket counts the introspection calls of one client in a fixed window.
type rateBucket struct {
	start time.Time
	n     int
}

// rateLimit takes one call from the client's bucket, or returns the 429
// answer with Retry-After.
func (s *Server) rateLimit(clientID string) *tokenError {
	limit := s.opts.IntrospectionRateLimit
	if limit == 0 {
		return nil
	}
	window := s.opts.IntrospectionRateWindow
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[clientID]
	if b == nil || !now.Before(b.start.Add(window)) {
		b = &rateBucket{start: now}
		s.buckets[clientID] = b
	}
	if b.n < limit {
		b.n++
		return nil
	}
	wait := b.start.Add(window).Sub(now)
	secs := max(int64((wait+time.Second-1)/time.Second), 1)
	return &tokenError{
		status:      http.StatusTooManyRequests,
		code:        "rate_limited",
		description: fmt.Sprintf("more than %d introspection calls in %v", limit, window),
		header:      http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}},
	}
}

// serveRevoke implements RFC 7009 token revocation. Clients authenticate as
// at the token endpoint; a client may revoke only its own tokens, and an
// unknown or inactive token is "revoked" with success (RFC 7009 §2.2).
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if terr := s.revoke(w, r); terr != nil {
		terr.write(w)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) *tokenError {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return invalidRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	form, terr := parseForm(w, r)
	if terr != nil {
		return terr
	}
	c, terr := s.authenticate(r, form)
	if terr != nil {
		return terr
	}
	token := form.Get("token")
	if token == "" {
		return invalidRequest("token missing")
	}
	if claims := s.activeClaims(token); claims != nil {
		if owner, _ := claims["client_id"].(string); owner != c.id {
			return &tokenError{status: http.StatusBadRequest, code: "unauthorized_client",
				description: "the token was not issued to this client"}
		}
	}
	s.Revoke(token)
	return nil
}
