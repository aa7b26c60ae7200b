package tokenguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors for errors.Is on what Authenticate returns. Each *Error
// matches exactly one of them.
var (
	// ErrNoToken: the request carries no bearer token (401, no error code).
	ErrNoToken = errors.New("tokenguard: no bearer token")
	// ErrInvalidRequest: the request is malformed (400 invalid_request).
	ErrInvalidRequest = errors.New("tokenguard: invalid request")
	// ErrInvalidToken: the token is not acceptable (401 invalid_token).
	ErrInvalidToken = errors.New("tokenguard: invalid token")
	// ErrInsufficientScope: the token lacks a required scope (403 insufficient_scope).
	ErrInsufficientScope = errors.New("tokenguard: insufficient scope")
	// ErrUnavailable: the authorization server's keys or answers could not be
	// obtained, so the token could not be judged (503, fail closed).
	ErrUnavailable = errors.New("tokenguard: authorization server unavailable")
)

// RFC 6750 §3.1 error codes.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// Error is a failed authentication or authorization, carrying what RFC 6750
// lets the client see and, separately, the cause for the operator.
type Error struct {
	// Status is the HTTP status to answer with: 400, 401, 403 or 503.
	Status int
	// Code is the RFC 6750 error code; empty for a request with no token.
	Code string
	// Description is a short fixed text safe to show the client.
	Description string
	// Scopes are the scopes the route requires (insufficient_scope only).
	Scopes []string
	// RetryAfter is sent as Retry-After with a 503.
	RetryAfter time.Duration
	// Err is the cause, for logs. It is never sent to the client.
	Err error

	// introspectable marks a JWT an issuer could still vouch for by
	// introspection: unparseable (introspectAt nil: it names no issuer), or
	// naming a trusted issuer that publishes no key set (introspectAt).
	introspectable bool
	introspectAt   *issuer
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("tokenguard: ")
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString(strconv.Itoa(e.Status))
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel for e's kind.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNoToken:
		return e.Status == http.StatusUnauthorized && e.Code == ""
	case ErrInvalidRequest:
		return e.Code == CodeInvalidRequest
	case ErrInvalidToken:
		return e.Code == CodeInvalidToken
	case ErrInsufficientScope:
		return e.Code == CodeInsufficientScope
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

func errNoToken() *Error {
	return &Error{Status: http.StatusUnauthorized, Description: "bearer token required"}
}

func errInvalidRequest(desc string, cause error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: desc, Err: cause}
}

func errInvalidToken(desc string, cause error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: desc, Err: cause}
}

func errUnavailable(retry time.Duration, cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Description: "authorization server unavailable, retry later", RetryAfter: retry, Err: cause}
}

func errInsufficientScope(scopes []string) *Error {
	return &Error{
		Status:      http.StatusForbidden,
		Code:        CodeInsufficientScope,
		Description: "token lacks a required scope",
		Scopes:      scopes,
		Err:         fmt.Errorf("required scopes %q", scopes),
	}
}

// asError turns any error into an *Error; an error that is not one already
// becomes a 500 with no challenge, since it means a bug, not a bad token.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e != nil && validErrorStatus(e.Status) {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Description: "internal error", Err: err}
}

// validErrorStatus reports whether status can answer a failed request.
func validErrorStatus(status int) bool {
	return status >= 400 && status <= 599
}

// challenge builds the WWW-Authenticate value (RFC 6750 §3, RFC 9728 §5.1).
func challenge(realm string, e *Error, resourceMetadata string) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		// RFC 6750 §3 allows neither '"' nor '\' in error, error_description
		// and scope, so those drop them; other values are escaped.
		writeQuoted(&b, value, name == "realm" || name == "resource_metadata")
		b.WriteByte('"')
		sep = ", "
	}
	if realm != "" {
		param("realm", realm)
	}
	if e.Code != "" {
		param("error", e.Code)
		if e.Description != "" {
			param("error_description", e.Description)
		}
	}
	if len(e.Scopes) > 0 {
		param("scope", strings.Join(e.Scopes, " "))
	}
	if resourceMetadata != "" {
		param("resource_metadata", resourceMetadata)
	}
	if sep == " " {
		// RFC 6750 §3: the scheme must be followed by at least one auth-param.
		param("realm", "")
	}
	return b.String()
}

// writeQuoted writes s as the inside of an RFC 9110 quoted-string, limited
// to printable ASCII; '"' and '\' are escaped, or dropped when escape is
// false. Anything else is dropped, so no value can break out of the header
// or start a new one.
func writeQuoted(b *strings.Builder, s string, escape bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			if escape {
				b.WriteByte('\\')
				b.WriteByte(c)
			}
		case c >= 0x20 && c <= 0x7e:
			b.WriteByte(c)
		}
	}
}

// WriteError answers the request with the status, WWW-Authenticate challenge
// and JSON body that err calls for. Adapters that call Authenticate
// themselves use it to answer exactly as Handler does.
func (g *Guard) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := asError(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	body := struct {
		Error       string `json:"error,omitempty"`
		Description string `json:"error_description,omitempty"`
		Scope       string `json:"scope,omitempty"`
	}{Error: e.Code, Description: e.Description, Scope: strings.Join(e.Scopes, " ")}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusBadRequest, http.StatusForbidden:
		h.Set("WWW-Authenticate", challenge(g.realm, e, g.resourceMetadataURL))
	case http.StatusServiceUnavailable:
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		h.Set("Retry-After", strconv.Itoa(secs))
		body.Error = "temporarily_unavailable"
	}
	g.log(r, e)
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(body)
}
