package introspect_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard/introspect"
)

// A server that does not introspect some kind of token says so with 400
// unsupported_token_type (panva's oidc-provider does for structured
// tokens): a verdict on the token, not an outage. Any other 400 stays an
// upstream error, with its error code for the caller.
func TestBadRequestAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		token      bool   // a TokenError
		code       string // the UpstreamError's ErrorCode
	}{
		{"unsupported_token_type", `{"error":"unsupported_token_type","error_description":"structured tokens are not introspected"}`, true, ""},
		{"invalid_request", `{"error":"invalid_request"}`, false, "invalid_request"},
		{"no body", ``, false, ""},
		{"not JSON", `<html>bad request</html>`, false, ""},
		{"error code with a quote", `{"error":"x\"y"}`, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t, jsonReply(http.StatusBadRequest, tc.body))
			c := newClient(t, introspect.Config{Endpoint: srv.URL, ClientID: "id", ClientSecret: "s"})
			_, err := call(t, c)
			if tc.token {
				if te := wantTokenError(t, err); te.Reason != "token is not active" {
					t.Errorf("reason %q", te.Reason)
				}
				return
			}
			if ue := wantUpstream(t, err); ue.StatusCode != 400 || ue.ErrorCode != tc.code {
				t.Errorf("status %d, code %q; want 400, %q", ue.StatusCode, ue.ErrorCode, tc.code)
			}
		})
	}
}

// A server that echoes the token (whole or in part) in what it answers
// does not get it into an error, and so into a log; controls that would
// rewrite a log line are neutralised.
func TestAnswersEchoingTheTokenAreRedacted(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		kind       string // "token" or "upstream"
		sentinel   error
	}{
		{"token in iss", `{"active":true,"iss":"https://evil.example/` + secretToken + `"}`, "token", nil},
		{"part of the token in aud", `{"active":true,"aud":"x` + secretToken[3:20] + `"}`, "token", nil},
		{"token as a duplicate member name", `{"active":true,"` + secretToken + `":1,"` + secretToken + `":2}`, "upstream", introspect.ErrBadResponse},
		{"token as a member of the wrong type", `{"active":true,"sub":{"` + secretToken + `":1}}`, "upstream", introspect.ErrBadResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t, jsonReply(200, tc.body))
			c := newClient(t, introspect.Config{Endpoint: srv.URL, ClientID: "id", ClientSecret: "s",
				TrustedIssuers: []string{"https://as.example"}, Audiences: []string{"https://api.example"}})
			_, err := call(t, c) // checkNoToken runs inside
			switch tc.kind {
			case "token":
				wantTokenError(t, err)
			default:
				wantUpstream(t, err)
				if !errors.Is(err, tc.sentinel) {
					t.Errorf("%v does not wrap %v", err, tc.sentinel)
				}
			}
		})
	}
	srv := server(t, jsonReply(200, `{"active":true,"iss":"https://a\u2028b\u202ec\u0085d.example"}`))
	c := newClient(t, introspect.Config{Endpoint: srv.URL, ClientID: "id", ClientSecret: "s", TrustedIssuers: []string{"https://as.example"}})
	_, err := call(t, c)
	if msg := wantTokenError(t, err).Error(); strings.ContainsAny(msg, "\u2028\u202e\u0085") {
		t.Errorf("controls reached the error: %q", msg)
	}
}
