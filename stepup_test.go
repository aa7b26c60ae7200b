package tokenguard_test

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Step-up (RFC 9470): a route that needs a stronger or a more recent
// authentication answers 401 insufficient_user_authentication with
// acr_values or max_age, so the client sends the user back to log in.
func TestStepUpRequirements(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	strong := g.Require(tokenguard.AuthenticatedWith("urn:example:mfa", "phr"))(okHandler)
	fresh := g.Require(tokenguard.AuthenticatedWithin(5 * time.Minute))(okHandler)
	now := time.Now()
	challenge := func(extra string) string {
		return `Bearer realm="` + g.Resource() + `", error="insufficient_user_authentication", error_description="a stronger or more recent authentication is required", ` + extra + `, resource_metadata="` + g.ResourceMetadataURL() + `"`
	}
	for _, c := range []struct {
		what   string
		h      string
		claims oauthtest.Claims
		status int
		want   string
	}{
		{"acr matches", "strong", oauthtest.Claims{"acr": "phr"}, 200, ""},
		{"acr too weak", "strong", oauthtest.Claims{"acr": "pwd"}, 401, challenge(`acr_values="urn:example:mfa phr"`)},
		{"no acr", "strong", nil, 401, challenge(`acr_values="urn:example:mfa phr"`)},
		{"acr not a string", "strong", oauthtest.Claims{"acr": []string{"phr"}}, 401, challenge(`acr_values="urn:example:mfa phr"`)},
		{"acr case differs", "strong", oauthtest.Claims{"acr": "PHR"}, 401, challenge(`acr_values="urn:example:mfa phr"`)},
		{"recent login", "fresh", oauthtest.Claims{"auth_time": now.Add(-time.Minute).Unix()}, 200, ""},
		{"old login", "fresh", oauthtest.Claims{"auth_time": now.Add(-time.Hour).Unix()}, 401, challenge(`max_age="300"`)},
		{"no auth_time", "fresh", nil, 401, challenge(`max_age="300"`)},
		{"auth_time in the future", "fresh", oauthtest.Claims{"auth_time": now.Add(time.Hour).Unix()}, 401, challenge(`max_age="300"`)},
		{"auth_time a string", "fresh", oauthtest.Claims{"auth_time": "yesterday"}, 401, challenge(`max_age="300"`)},
		{"auth_time huge", "fresh", oauthtest.Claims{"auth_time": 1e300}, 401, challenge(`max_age="300"`)},
	} {
		h := strong
		if c.h == "fresh" {
			h = fresh
		}
		w := call(h, "Bearer "+as.Mint(c.claims))
		if w.Code != c.status || w.Header().Get("WWW-Authenticate") != c.want {
			t.Errorf("%s: %d %q\nwant %d %q", c.what, w.Code, w.Header().Get("WWW-Authenticate"), c.status, c.want)
		}
	}

	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+as.Mint(oauthtest.Claims{"acr": "pwd"}))
	_, err := g.Check(r, tokenguard.AuthenticatedWith("phr"))
	if !errors.Is(err, tokenguard.ErrInsufficientUserAuthentication) || !errors.Is(err, tokenguard.ReasonAuthenticationWeak) || errors.Is(err, tokenguard.ErrNoToken) {
		t.Errorf("errors.Is on a step-up refusal: %v", err)
	}
	// Optional does not take a step-up refusal for an anonymous request.
	var seen reached
	w := call(g.Optional(g.Require(tokenguard.AuthenticatedWith("phr"))(seen.handler())), "Bearer "+as.Mint(oauthtest.Claims{"acr": "pwd"}))
	if w.Code != 401 || seen.called {
		t.Errorf("Optional + step-up: %d, handler reached %v", w.Code, seen.called)
	}
	defer func() {
		if recover() == nil {
			t.Error("AuthenticatedWithin(0) did not panic")
		}
	}()
	tokenguard.AuthenticatedWithin(0)
}
