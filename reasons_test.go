package tokenguard_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Every refusal carries a stable Reason, matched by errors.Is, so callers
// tell "expired" from "wrong audience" without reading text.
func TestRefusalReasons(t *testing.T) {
	as, g := opaqueSetup(t, oauthtest.Options{}, tokenguard.IntrospectionConfig{}, tokenguard.Config{})
	other := newAS(t, oauthtest.Options{})
	b64 := base64URL
	for _, tc := range []struct {
		name   string
		auth   string
		scopes []string
		want   tokenguard.Reason
		kind   error
	}{
		{"no token", "", nil, tokenguard.ReasonTokenMissing, tokenguard.ErrNoToken},
		{"characters a token cannot have", "Bearer a\"b", nil, tokenguard.ReasonRequestInvalid, tokenguard.ErrInvalidRequest},
		{"expired", "Bearer " + as.Mint(oauthtest.Claims{"exp": time.Now().Add(-time.Hour).Unix()}), nil, tokenguard.ReasonTokenExpired, tokenguard.ErrInvalidToken},
		{"not yet valid", "Bearer " + as.Mint(oauthtest.Claims{"nbf": time.Now().Add(time.Hour).Unix()}), nil, tokenguard.ReasonTokenNotYetValid, tokenguard.ErrInvalidToken},
		{"other audience", "Bearer " + as.Mint(oauthtest.Claims{"aud": "api://other"}), nil, tokenguard.ReasonAudienceMismatch, tokenguard.ErrInvalidToken},
		{"tampered", "Bearer " + tamperSignature(as.Mint(nil)), nil, tokenguard.ReasonSignatureInvalid, tokenguard.ErrInvalidToken},
		{"alg none", "Bearer " + b64(`{"alg":"none"}`) + "." + b64(`{"sub":"x"}`) + ".", nil, tokenguard.ReasonAlgorithmRefused, tokenguard.ErrInvalidToken},
		{"unknown kid", "Bearer " + as.MintWith(oauthtest.MintOptions{Header: map[string]any{"kid": "nope"}}), nil, tokenguard.ReasonKeyUnknown, tokenguard.ErrInvalidToken},
		{"untrusted issuer", "Bearer " + other.Mint(nil), nil, tokenguard.ReasonIssuerUntrusted, tokenguard.ErrInvalidToken},
		{"malformed", "Bearer eyJhbGciOg.e30.c2ln", nil, tokenguard.ReasonTokenMalformed, tokenguard.ErrInvalidToken},
		{"inactive opaque", "Bearer not-a-token-the-server-issued", nil, tokenguard.ReasonTokenInactive, tokenguard.ErrInvalidToken},
		{"bound token", "Bearer " + as.Mint(oauthtest.Claims{"cnf": map[string]any{"jkt": "x"}}), nil, tokenguard.ReasonProofRequired, tokenguard.ErrInvalidToken},
		{"refresh token", "Bearer " + as.MintOpaque(oauthtest.Claims{"token_use": "refresh_token"}), nil, tokenguard.ReasonNotAccessToken, tokenguard.ErrInvalidToken},
		{"missing scope", "Bearer " + as.Mint(nil), []string{"orders:write"}, tokenguard.ReasonScopeInsufficient, tokenguard.ErrInsufficientScope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/orders", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			_, err := g.Authorize(r, tc.scopes...)
			var e *tokenguard.Error
			if !errors.As(err, &e) || e.Reason != tc.want {
				t.Fatalf("err %v, reason %q; want %q", err, reasonOf(e), tc.want)
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, tc.kind) {
				t.Errorf("errors.Is(err, %q) %v, errors.Is(err, %v) %v", tc.want, errors.Is(err, tc.want), tc.kind, errors.Is(err, tc.kind))
			}
			if tc.want != tokenguard.ReasonTokenExpired && errors.Is(err, tokenguard.ReasonTokenExpired) {
				t.Error("matches another reason")
			}
		})
	}
	// The authorization server down: 503, upstream_unavailable.
	as.SetFault("introspect", &oauthtest.Fault{Status: 500})
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+as.MintOpaque(nil))
	if _, err := g.Authenticate(r); !errors.Is(err, tokenguard.ReasonUpstreamUnavailable) || !errors.Is(err, tokenguard.ErrUnavailable) {
		t.Errorf("outage: %v", err)
	}
}

func reasonOf(e *tokenguard.Error) tokenguard.Reason {
	if e == nil {
		return ""
	}
	return e.Reason
}

// tamperSignature changes the last characters of a JWS's signature.
func tamperSignature(tok string) string { return tok[:len(tok)-4] + "AAAA" }
