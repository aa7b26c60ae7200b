package tggrpc_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// The adapter adds no behaviour: a call gets the answer the same request
// gets from Guard.Require over HTTP (a POST to the method's path with the
// call's metadata as headers), in gRPC's terms: the code for the status,
// the error_description as message, the WWW-Authenticate fields joined
// with ", ", and Retry-After.
func TestParityWithHTTP(t *testing.T) {
	as, g := newGuard(t, func(c *tokenguard.Config) {
		c.DPoP = tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed, Origin: dpopOrigin}
	})
	conn, _ := start(t, g, testOptions())
	httpCodes := map[int]codes.Code{200: codes.OK, 400: codes.InvalidArgument, 401: codes.Unauthenticated, 403: codes.PermissionDenied, 503: codes.Unavailable}
	alice := newHolder(t)
	past := time.Now().Add(-time.Hour)
	bound := as.Mint(oauthtest.Claims{"sub": "alice", "cnf": map[string]any{"jkt": alice.jkt}})
	expiredBound := as.Mint(oauthtest.Claims{"sub": "alice", "cnf": map[string]any{"jkt": alice.jkt}, "exp": past.Unix(), "iat": past.Add(-time.Hour).Unix()})

	for _, c := range []struct {
		name   string
		method string
		md     func() metadata.MD // called once per transport: proofs are fresh
	}{
		{name: "valid", method: methodGet, md: func() metadata.MD { return authMD(bearer(as.Mint(nil))) }},
		{name: "no token", method: methodGet, md: func() metadata.MD { return nil }},
		{name: "no token, scoped", method: methodCreate, md: func() metadata.MD { return nil }},
		{name: "missing scope", method: methodCreate, md: func() metadata.MD { return authMD(bearer(as.Mint(oauthtest.Claims{"scope": "orders:read"}))) }},
		{name: "expired", method: methodGet, md: func() metadata.MD {
			return authMD(bearer(as.Mint(oauthtest.Claims{"exp": past.Unix(), "iat": past.Add(-time.Hour).Unix()})))
		}},
		{name: "two authorization values", method: methodGet, md: func() metadata.MD {
			tok := "Bearer " + as.Mint(nil)
			return authMD([]string{tok, tok})
		}},
		{name: "empty bearer", method: methodGet, md: func() metadata.MD { return authMD([]string{"Bearer "}) }},
		{name: "bound token as Bearer", method: methodGet, md: func() metadata.MD { return authMD(bearer(bound)) }},
		{name: "DPoP, valid", method: methodGet, md: func() metadata.MD { return dpopMD(bound, alice.proof(t, "POST", dpopOrigin+methodGet, bound)) }},
		{name: "DPoP, no proof", method: methodGet, md: func() metadata.MD { return dpopMD(bound) }},
		{name: "DPoP, expired token", method: methodGet,
			md: func() metadata.MD {
				return dpopMD(expiredBound, alice.proof(t, "POST", dpopOrigin+methodGet, expiredBound))
			}},
		{name: "DPoP, missing scope", method: methodCreate,
			md: func() metadata.MD { return dpopMD(bound, alice.proof(t, "POST", dpopOrigin+methodCreate, bound)) }},
		{name: "introspection down", method: methodGet, md: func() metadata.MD {
			as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway})
			return authMD(bearer(as.MintOpaque(nil)))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer as.SetFault(oauthtest.EndpointIntrospect, nil)
			// Over HTTP, through the core's own middleware.
			r := httptest.NewRequest(http.MethodPost, c.method, nil)
			for k, vs := range c.md() {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			reqs := []tokenguard.Requirement(nil)
			if c.method == methodCreate {
				reqs = append(reqs, tokenguard.AllScopes(scopeWrite))
			}
			w := httptest.NewRecorder()
			g.Require(reqs...)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, r)
			var body struct {
				Description string `json:"error_description"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &body)
			wantChal := strings.Join(w.Header().Values("WWW-Authenticate"), ", ")

			o := unary(t, conn, c.method, c.md())
			if want := httpCodes[w.Code]; o.code != want || (w.Code != 200 && o.msg != body.Description) {
				t.Errorf("gRPC %v %q, HTTP %d %q", o.code, o.msg, w.Code, body.Description)
			}
			if got := o.challenge(); got != wantChal {
				t.Errorf("www-authenticate\n gRPC %q\n HTTP %q", got, wantChal)
			}
			if got, want := o.retryAfter(), w.Header().Get("Retry-After"); got != want {
				t.Errorf("retry-after: gRPC %q, HTTP %q", got, want)
			}
		})
	}
}
