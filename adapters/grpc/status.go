package tggrpc

import (
	"errors"
	"net/http"
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
	// mdChallenge carries Guard.Challenges joined: the RFC 6750 challenge, or
	// with DPoP allowed both challenges joined with ", ".
	mdChallenge = "www-authenticate"
	// mdRetryAfter carries the whole seconds to wait after a
	// codes.Unavailable, as HTTP's Retry-After does after a 503.
	mdRetryAfter = "retry-after"
	// mdDPoPNonce carries the DPoP nonce (RFC 9449 §8) of a use_dpop_nonce
	// refusal, and the current one with an accepted DPoP call, as HTTP's
	// DPoP-Nonce does.
	mdDPoPNonce = "dpop-nonce"
)

// refusalOf is what a client may learn of the core's refusal err, as the
// Guard would answer it over HTTP: the status, the description, the time to
// wait and the DPoP nonce. An error that is not an *tokenguard.Error with
// an error status is an internal error, as the core treats it.
func refusalOf(err error) (status int, desc string, retryAfter time.Duration, nonce string) {
	var e *tokenguard.Error
	if !errors.As(err, &e) || e == nil || e.Status < 400 || e.Status > 599 {
		return http.StatusInternalServerError, "internal error", 0, ""
	}
	desc = e.Description
	if desc == "" {
		desc = strings.ToLower(http.StatusText(e.Status))
	}
	return e.Status, desc, e.RetryAfter, e.DPoPNonce
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
	st, desc, _, _ := refusalOf(err)
	return status.Error(code(st), desc)
}

// refusalMD is the metadata sent with a refusal of r: the header fields
// the Guard would send with it over HTTP (Guard.Refuse, which also logs
// it): the challenges, joined with ", " as one field may carry several,
// for a 503 the seconds to wait, and the refusal's DPoP nonce. r may be
// nil.
func refusalMD(g *tokenguard.Guard, r *http.Request, err error) metadata.MD {
	md := metadata.MD{}
	_, h := g.Refuse(r, err)
	if c := strings.Join(h.Values("WWW-Authenticate"), ", "); c != "" {
		md.Set(mdChallenge, c)
	}
	if v := h.Get("Retry-After"); v != "" {
		md.Set(mdRetryAfter, v)
	}
	if v := h.Get("DPoP-Nonce"); v != "" {
		md.Set(mdDPoPNonce, v)
	}
	return md
}

// acceptedMD is the metadata sent with an accepted call r: the Guard's
// current DPoP nonce for a call in the DPoP scheme, when the Guard issues
// nonces (RFC 9449 §8.2: the client moves to it before the one it used
// expires), as Guard.Handler sends DPoP-Nonce; nil otherwise.
func acceptedMD(g *tokenguard.Guard, r *http.Request) metadata.MD {
	if n := g.AcceptedNonce(r); n != "" {
		return metadata.Pairs(mdDPoPNonce, n)
	}
	return nil
}
