package introspect

import (
	"errors"
	"strings"
	"time"
)

// Sentinel errors for errors.Is. Every error Introspect returns matches
// exactly one of ErrTokenRejected and ErrUpstream.
var (
	// ErrTokenRejected: the server says the token is active but the answer
	// shows it must not be accepted here. See TokenError.
	ErrTokenRejected = errors.New("introspect: token rejected")
	// ErrUpstream: the introspection could not be carried out, so the
	// token's fate is unknown. See UpstreamError.
	ErrUpstream = errors.New("introspect: introspection failed")
	// ErrCredentialsRejected: the introspection endpoint (or the token
	// endpoint the bearer token comes from) refused this client's
	// credentials. It is an operator's problem, always inside an
	// UpstreamError.
	ErrCredentialsRejected = errors.New("introspect: introspection credentials rejected")
	// ErrBadResponse: the server answered 200 with something that is not a
	// valid introspection response (not JSON, trailing data, active missing
	// or not a boolean, a member of the wrong type, a JWT response that does
	// not verify). Always inside an UpstreamError.
	ErrBadResponse = errors.New("introspect: malformed introspection response")
)

// TokenError reports an active token that fails validation. The caller
// answers 401 invalid_token.
type TokenError struct {
	// Reason is a short fixed text, safe to show the client, such as
	// "token expired".
	Reason string
	// Detail is for the operator: the value that failed, such as the exp
	// time or the issuer. It never contains the token.
	Detail string
}

func (e *TokenError) Error() string {
	s := "introspect: token rejected: " + e.Reason
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap makes errors.Is(err, ErrTokenRejected) true.
func (e *TokenError) Unwrap() error { return ErrTokenRejected }

// UpstreamError reports an introspection that could not be carried out. The
// caller answers 503 with Retry-After and must not cache the outcome.
type UpstreamError struct {
	// StatusCode is the HTTP status the authorization server answered with
	// (introspection or token endpoint); 0 when no response arrived.
	StatusCode int
	// RetryAfter is the server's Retry-After hint; 0 when absent.
	RetryAfter time.Duration
	// Err is the cause. It may wrap ErrCredentialsRejected, ErrBadResponse,
	// context.DeadlineExceeded or a *url.Error.
	Err error
}

func (e *UpstreamError) Error() string {
	if e.Err == nil {
		return ErrUpstream.Error()
	}
	return "introspect: " + strings.TrimPrefix(e.Err.Error(), "introspect: ")
}

// Unwrap makes errors.Is see both ErrUpstream and the cause.
func (e *UpstreamError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrUpstream}
	}
	return []error{ErrUpstream, e.Err}
}

// quote bounds and quotes text that came from the server for an error.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return '?'
		}
		return r
	}, s) + `"`
}
