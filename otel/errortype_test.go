package tgotel_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/introspect"
	tgotel "github.com/tokenguard/tokenguard/otel"
)

func TestErrorType(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, c := range []struct {
		name string
		r    tokenguard.UpstreamResult
		want string
	}{
		{"success", tokenguard.UpstreamResult{Status: 200}, ""},
		{"a token the Guard refuses", tokenguard.UpstreamResult{Err: &introspect.TokenError{Reason: "token expired", Detail: "exp 12"}}, ""},
		{"an error status", tokenguard.UpstreamResult{Status: 502, Err: errors.New("GET x: status 502")}, "502"},
		{"rate-limited", tokenguard.UpstreamResult{Status: 429, Err: &introspect.UpstreamError{StatusCode: 429}}, "429"},
		{"credentials", tokenguard.UpstreamResult{Status: 401, Err: &introspect.UpstreamError{StatusCode: 401, Err: introspect.ErrCredentialsRejected}}, "credentials_rejected"},
		{"a bad answer", tokenguard.UpstreamResult{Status: 200, Err: &introspect.UpstreamError{StatusCode: 200, Err: introspect.ErrBadResponse}}, "invalid_response"},
		{"no usable key", tokenguard.UpstreamResult{Status: 200, Err: errors.New("jwks: no usable key")}, "invalid_response"},
		{"deadline", tokenguard.UpstreamResult{Err: fmt.Errorf("fetch: %w", context.DeadlineExceeded)}, "timeout"},
		{"net timeout", tokenguard.UpstreamResult{Err: &url.Error{Op: "Get", URL: "u", Err: timeoutErr{}}}, "timeout"},
		{"canceled", tokenguard.UpstreamResult{Err: context.Canceled}, "canceled"},
		{"refused connection", tokenguard.UpstreamResult{Err: &url.Error{Op: "Post", URL: "u", Err: dial}}, "connection"},
		{"anything else", tokenguard.UpstreamResult{Err: errors.New("boom")}, "_OTHER"},
	} {
		if got := tgotel.ErrorType(c.r); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestSafeURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://as.example/oauth/jwks":                        "https://as.example/oauth/jwks",
		"https://user:secret@as.example:8443/jwks?k=v&x=1#top": "https://as.example:8443/jwks",
		"https://as.example/introspect?":                       "https://as.example/introspect",
		"https://as.example/%zz":                               "",
		"mailto:someone@example.com":                           "",
	} {
		if got := tgotel.SafeURL(in); got != want {
			t.Errorf("SafeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOutcome(t *testing.T) {
	for status, want := range map[int]string{200: "accepted", 400: "refused", 401: "refused", 403: "refused", 503: "unavailable", 500: "error", 0: "error"} {
		if got := tgotel.Outcome(status); got != want {
			t.Errorf("outcome(%d) = %q, want %q", status, got, want)
		}
	}
}
