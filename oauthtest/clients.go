package oauthtest

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// maxBodyBytes caps request bodies of the token and registration endpoints.
const maxBodyBytes = 1 << 20

type client struct {
	id     string
	secret string // "" for a public client (token_endpoint_auth_method "none")
	scopes []string
}

// RegisterClient registers (or replaces) the client id with the given secret
// and allowed scopes, for the client-credentials grant at [Server.TokenURL]
// and for authentication at [Server.IntrospectionURL] and
// [Server.RevocationURL].
// An empty secret registers a public client, which authenticates with its id
// alone and may not use the client-credentials grant. Clients can also
// register themselves at [Server.RegistrationURL] (RFC 7591). RegisterClient
// panics if id is empty.
func (s *Server) RegisterClient(id, secret string, scopes ...string) {
	if id == "" {
		panic("oauthtest: RegisterClient: empty client id")
	}
	c := &client{id: id, secret: secret, scopes: slices.Clone(scopes)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[id] = c
}

// tokenError is an RFC 6749 §5.2 error response.
type tokenError struct {
	status      int
	code        string
	description string
	header      http.Header // added to the response, such as Retry-After
}

func (e *tokenError) write(w http.ResponseWriter) {
	for name, values := range e.header {
		w.Header()[http.CanonicalHeaderKey(name)] = values
	}
	if e.status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauthtest"`)
	}
	writeError(w, e.status, e.code, e.description)
}

func invalidRequest(format string, args ...any) *tokenError {
	return &tokenError{status: http.StatusBadRequest, code: "invalid_request", description: fmt.Sprintf(format, args...)}
}

func invalidClient(description string) *tokenError {
	return &tokenError{status: http.StatusUnauthorized, code: "invalid_client", description: description}
}

// serveToken implements the client-credentials grant (RFC 6749 §4.4).
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	tok, terr := s.token(w, r)
	if terr != nil {
		terr.write(w)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, tok)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) (map[string]any, *tokenError) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil, invalidRequest("Content-Type must be application/x-www-form-urlencoded")
	}
	form, terr := parseForm(w, r)
	if terr != nil {
		return nil, terr
	}
	c, terr := s.authenticate(r, form)
	if terr != nil {
		return nil, terr
	}
	switch grant := form.Get("grant_type"); grant {
	case "":
		return nil, invalidRequest("grant_type missing")
	case "client_credentials":
	default:
		return nil, &tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", description: "grant_type " + grant + " is not supported"}
	}
	if c.secret == "" {
		return nil, &tokenError{status: http.StatusBadRequest, code: "unauthorized_client", description: "a public client cannot use client_credentials"}
	}
	scopes := c.scopes
	if _, ok := form["scope"]; ok {
		scopes = nil
		for _, sc := range strings.Fields(form.Get("scope")) {
			if !slices.Contains(c.scopes, sc) {
				return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_scope", description: "scope " + sc + " is not allowed for this client"}
			}
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	scope := strings.Join(scopes, " ")
	claims := Claims{"sub": c.id, "client_id": c.id}
	if scope != "" {
		claims["scope"] = scope
	}
	var access string
	if s.opts.OpaqueTokens {
		access = s.MintOpaque(claims)
	} else {
		access = s.Mint(claims)
	}
	resp := map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   max(int64(s.opts.TokenLifetime.Seconds()), 0),
	}
	if scope != "" {
		resp["scope"] = scope
	}
	return resp, nil
}

// parseForm reads a form body of at most maxBodyBytes in which no parameter
// is repeated (RFC 6749 §3.1, §3.2).
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, *tokenError) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	if err := r.ParseForm(); err != nil {
		return nil, invalidRequest("malformed form body")
	}
	for name, values := range r.PostForm {
		if len(values) > 1 {
			return nil, invalidRequest("parameter %s repeated", name)
		}
	}
	return r.PostForm, nil
}

// authenticate applies client_secret_basic (with the RFC 6749 §2.3.1
// form-url-decoding of id and secret), client_secret_post, or, for a public
// client, its client_id alone.
func (s *Server) authenticate(r *http.Request, form url.Values) (*client, *tokenError) {
	id, secret, basic := r.BasicAuth()
	_, postSecret := form["client_secret"]
	switch {
	case basic:
		if postSecret {
			return nil, invalidRequest("more than one client authentication method")
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, invalidClient("malformed client credentials in Authorization header")
		}
		if bodyID, ok := form["client_id"]; ok && bodyID[0] != id {
			return nil, invalidRequest("client_id does not match the Authorization header")
		}
	case r.Header.Get("Authorization") != "":
		return nil, invalidClient("malformed or unsupported Authorization header")
	default:
		id, secret = form.Get("client_id"), form.Get("client_secret")
		if id == "" {
			return nil, invalidClient("client authentication required")
		}
	}
	s.mu.Lock()
	c := s.clients[id]
	s.mu.Unlock()
	switch {
	case c == nil:
		return nil, invalidClient("unknown client")
	case c.secret == "" && (basic || postSecret):
		return nil, invalidClient("public client must not send a secret")
	case c.secret != "" && !basic && !postSecret:
		return nil, invalidClient("client authentication required")
	case subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) != 1:
		return nil, invalidClient("client authentication failed")
	}
	return c, nil
}

// serveRegister implements RFC 7591 dynamic client registration.
func (s *Server) serveRegister(w http.ResponseWriter, r *http.Request) {
	badMetadata := func(description string) {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", description)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		badMetadata("Content-Type must be application/json")
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.UseNumber()
	var meta map[string]any
	if err := dec.Decode(&meta); err != nil || meta == nil {
		badMetadata("body must be a JSON object")
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		badMetadata("body must be a single JSON object")
		return
	}
	method := "client_secret_basic"
	if v, ok := meta["token_endpoint_auth_method"]; ok {
		m, _ := v.(string)
		switch m {
		case "none", "client_secret_basic", "client_secret_post":
			method = m
		default:
			badMetadata(fmt.Sprintf("token_endpoint_auth_method %v is not supported", v))
			return
		}
	}
	for _, name := range []string{"redirect_uris", "grant_types", "response_types"} {
		if v, ok := meta[name]; ok && !isStringArray(v) {
			badMetadata(name + " must be an array of strings")
			return
		}
	}
	scopes := slices.Clone(s.opts.Scopes)
	if v, ok := meta["scope"]; ok {
		str, isString := v.(string)
		if !isString {
			badMetadata("scope must be a string")
			return
		}
		scopes = strings.Fields(str)
	}
	c := &client{id: randomID(), scopes: scopes}
	if method != "none" {
		c.secret = randomID() + randomID()
	}
	s.mu.Lock()
	s.clients[c.id] = c
	s.mu.Unlock()

	resp := meta
	for _, name := range []string{"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at", "scope"} {
		delete(resp, name)
	}
	resp["client_id"] = c.id
	resp["client_id_issued_at"] = s.opts.Now().Unix()
	resp["token_endpoint_auth_method"] = method
	if c.secret != "" {
		resp["client_secret"] = c.secret
		resp["client_secret_expires_at"] = 0
	}
	if len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, resp)
}

func isStringArray(v any) bool {
	a, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range a {
		if _, ok := e.(string); !ok {
			return false
		}
	}
	return true
}
