package oauthtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
)

// A cause that quotes the token (as a ValidateClaims hook's might) does
// not bring it into Principal's panic.
func TestRefusalHidesToken(t *testing.T) {
	const tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
	for _, err := range []error{
		&tokenguard.Error{Status: 401, Code: "invalid_token", Description: "token rejected by policy",
			Reason: tokenguard.ReasonPolicyRejected, Err: fmt.Errorf("hook: %s is banned", tok)},
		fmt.Errorf("wrapped: %w", &tokenguard.Error{Status: 403, Err: errors.New(tok)}),
		errors.New("not an *Error: " + tok),
	} {
		msg := refusal(err, tok)
		if strings.Contains(msg, tok) || !strings.Contains(msg, "[token]") {
			t.Errorf("refusal(%v) = %q", err, msg)
		}
	}
	got := refusal(&tokenguard.Error{Status: 401, Code: "invalid_token", Description: "token expired",
		Reason: tokenguard.ReasonTokenExpired, Err: errors.New("exp 1 is 2s in the past")}, tok)
	if want := "401 token_expired: token expired: exp 1 is 2s in the past"; got != want {
		t.Errorf("refusal = %q, want %q", got, want)
	}
}
