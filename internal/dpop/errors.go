package dpop

import (
	"errors"
	"fmt"
)

// The RFC 9449 error codes (§7.1 for a resource server, §12.2), for the
// WWW-Authenticate DPoP challenge.
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
)

var (
	// ErrInvalidProof is wrapped by every error for a proof that is not
	// valid for the request: invalid_dpop_proof. The message after it says
	// why, for the operator.
	ErrInvalidProof = errors.New("dpop: invalid DPoP proof")

	// ErrUseNonce is wrapped by every error for a proof that is valid but
	// for its nonce (Options.Nonce is set): use_dpop_nonce. The caller
	// answers with a fresh nonce in the DPoP-Nonce header (RFC 9449 §9).
	ErrUseNonce = errors.New("dpop: the server's nonce is required")
	// ErrNonceMissing: the proof has no nonce claim. It wraps ErrUseNonce.
	ErrNonceMissing = fmt.Errorf("%w: the proof has no nonce", ErrUseNonce)
	// ErrNonceRejected: the proof's nonce is not accepted (unknown,
	// expired, not NQCHARs). It wraps ErrUseNonce.
	ErrNonceRejected = fmt.Errorf("%w: the proof's nonce is not accepted", ErrUseNonce)

	// ErrOptions is wrapped by the errors for Options the caller got
	// wrong (no Method, a URL that is not an absolute http or https URI, a
	// negative Window): no proof can be judged, and the request is denied
	// as a server error, not blamed on the client.
	ErrOptions = errors.New("dpop: invalid options")
)

// Code returns the RFC 9449 error code for an error of Verify:
// CodeInvalidProof or CodeUseNonce, and "" for nil, ErrOptions and any
// other error (a server error: deny without blaming the proof).
func Code(err error) string {
	switch {
	case errors.Is(err, ErrInvalidProof):
		return CodeInvalidProof
	case errors.Is(err, ErrUseNonce):
		return CodeUseNonce
	}
	return ""
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidProof, fmt.Sprintf(format, args...))
}
