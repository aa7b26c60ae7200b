package introspect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	redactpkg "github.com/tokenguard/tokenguard/internal/redact"
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
	// ErrorCode is the error member of a 400 answer's JSON body (RFC 6749
	// §5.2), such as "invalid_request"; "" when absent.
	ErrorCode string
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
// Not only ASCII controls are neutralised: C1 controls (U+0085), line
// separators (U+2028) and bidi overrides (U+202E) would let a server
// rewrite how a log line reads.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return `"` + strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s) + `"`
}

// redact returns err, or when its text (beyond what is ours: the
// endpoint URL) contains the token or a piece of it long enough to matter,
// an error of the same kind and sentinels without that text. An
// UpstreamError's ErrorCode, which its text leaves out, is checked too.
func redact(err error, token, endpoint string) error {
	text := err.Error()
	if endpoint != "" {
		text = strings.ReplaceAll(text, endpoint, "")
	}
	ue, isUpstream := err.(*UpstreamError)
	if !redactpkg.Leaks(text, token) {
		if isUpstream && redactpkg.Leaks(ue.ErrorCode, token) {
			cp := *ue
			cp.ErrorCode = ""
			return &cp
		}
		return err
	}
	switch e := err.(type) {
	case *TokenError:
		return &TokenError{Reason: e.Reason, Detail: redactpkg.Withheld}
	case *UpstreamError:
		out := &UpstreamError{StatusCode: e.StatusCode, RetryAfter: e.RetryAfter}
		if !redactpkg.Leaks(e.ErrorCode, token) {
			out.ErrorCode = e.ErrorCode
		}
		out.Err = errors.New(redactpkg.Withheld)
		for _, sentinel := range []error{ErrBadResponse, ErrCredentialsRejected, context.DeadlineExceeded, context.Canceled} {
			if errors.Is(e.Err, sentinel) {
				out.Err = fmt.Errorf("%w (%s)", sentinel, redactpkg.Withheld)
				break
			}
		}
		return out
	}
	return &UpstreamError{Err: errors.New(redactpkg.Withheld)}
}

// leakWindow is redact.Window, the piece of a token that counts as it.
const leakWindow = redactpkg.Window
