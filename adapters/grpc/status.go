package tggrpc

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/tokenguard/tokenguard"
)

// Metadata keys of a refusal, in the response header of a unary call and
// the trailer of a stream.
const (
	// mdChallenge carries Guard.Challenge: the RFC 6750 challenge, or
	// with DPoP allowed both challenges joined with ", ".
	mdChallenge = "www-authenticate"
	// mdRetryAfter carries the whole seconds to wait after a
	// codes.Unavailable, as HTTP's Retry-After does after a 503.
	mdRetryAfter = "retry-after"
)

// refused is the core's refusal err, as the Guard would answer it over
// HTTP: its status and the description the client may see. An error that
// is not an *tokenguard.Error with an error status is an internal error,
// as the core treats it.
func refused(err error) (status int, desc string, retryAfter time.Duration) {
	var e *tokenguard.Error
	if !errors.As(err, &e) || e == nil || e.Status < 400 || e.Status > 599 {
		return http.StatusInternalServerError, "internal error", 0
	}
	desc = e.Description
	if desc == "" {
		desc = strings.ToLower(http.StatusText(e.Status))
	}
	return e.Status, desc, e.RetryAfter
}

// code is the gRPC status code for an HTTP status of a refusal.
func code(httpStatus int) codes.Code {
	switch httpStatus {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	if httpStatus >= 400 && httpStatus < 500 {
		return codes.PermissionDenied // a refusal all the same
	}
	return codes.Internal
}

// refusal is the status error a refused call ends with: the code for the
// refusal's HTTP status and its description as message.
func refusal(err error) error {
	st, desc, _ := refused(err)
	return status.Error(code(st), desc)
}

// refusalMD is the metadata sent with a refusal: the challenge the Guard
// gives for it, and for a 503 the seconds to wait (whole seconds, at least
// one, as the core's Retry-After).
func refusalMD(g *tokenguard.Guard, err error) metadata.MD {
	md := metadata.MD{}
	if c := g.Challenge(err); c != "" {
		md.Set(mdChallenge, c)
	}
	if st, _, after := refused(err); st == http.StatusServiceUnavailable {
		secs := max(int((after+time.Second-1)/time.Second), 1)
		md.Set(mdRetryAfter, strconv.Itoa(secs))
	}
	return md
}
