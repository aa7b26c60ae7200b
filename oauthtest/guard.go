package oauthtest

// This file holds the only code of the package that uses the tokenguard
// package: helpers for tests of handlers a tokenguard.Guard protects. The
// authorization server itself (minting, signing, serving) is built from
// the standard library alone, so that its tokens check tokenguard
// independently; TestOnlyGuardHelpersImportTokenguard keeps it so.

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tokenguard/tokenguard"
)

// GuardConfig returns a [tokenguard.Config] that trusts this server and
// accepts the tokens [Server.Mint] issues:
//
//	Issuer               Issuer: only this server's metadata and keys are fetched
//	Resource             Resource(): the audience (which defaults to it) is
//	                     the aud Mint puts in tokens, and the realm
//	ResourceMetadataURL  ResourceMetadataURL(): challenges name the RFC 9728
//	                     document this server serves for Resource()
//	InsecureAllowHTTP    true for a plain-HTTP server (NewServer, Start)
//	HTTPClient           Client() for a StartTLS server: it trusts the
//	                     server's certificate
//
// Every other field is left zero, Audience included (it defaults to
// Resource, so InsecureSkipAudienceCheck can still be set), for the caller
// to fill in:
//
//	cfg := as.GuardConfig()
//	cfg.RequireATJWTType = true
//	g, err := tokenguard.New(ctx, cfg)
//
// Changing Resource calls for a ResourceMetadataURL to match (or "", to
// derive it from Resource). With Options.Now, set Config.Now to the same
// clock, or the guard judges exp and iat by the real time. GuardConfig
// panics if the server has not started.
func (s *Server) GuardConfig() tokenguard.Config {
	if s.URL == "" {
		panic("oauthtest: GuardConfig before the server started")
	}
	cfg := tokenguard.Config{
		Issuer:              s.Issuer,
		Resource:            s.Resource(),
		ResourceMetadataURL: s.ResourceMetadataURL(),
	}
	if strings.HasPrefix(s.URL, "https://") {
		cfg.HTTPClient = s.Client()
	} else {
		cfg.InsecureAllowHTTP = true
	}
	return cfg
}

// BearerClient returns an HTTP client that sends "Authorization: Bearer "
// + token with every request, unless the request has an Authorization
// header of its own, which is then sent as it is (so one client can also
// send another credential). The header is set on a clone: the caller's
// request is never changed. The client is a test client and sends the
// token to every host, redirects included.
//
// It uses the transport of [Server.Client], so it reaches plain-HTTP
// servers and, after StartTLS, servers with httptest's certificate (such
// as those of httptest.NewTLSServer); Close closes its idle connections.
// BearerClient panics if the server has not started.
func (s *Server) BearerClient(token string) *http.Client {
	if s.URL == "" {
		panic("oauthtest: BearerClient before the server started")
	}
	base := s.Client().Transport
	if base == nil {
		base = http.DefaultTransport
	}
	return &http.Client{Transport: &bearerTransport{base: base, authorization: "Bearer " + token}}
}

type bearerTransport struct {
	base          http.RoundTripper
	authorization string
}

func (t *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, ok := r.Header["Authorization"]; ok {
		return t.base.RoundTrip(r)
	}
	// A RoundTripper must not modify the request (net/http.RoundTripper).
	r = r.Clone(r.Context())
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.Header.Set("Authorization", t.authorization)
	return t.base.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (t *bearerTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Principal mints a JWT with claims, as [Server.Mint] does (the same
// defaults; a nil value removes one), and returns the
// [tokenguard.Principal] g authenticates it as, by g.Authenticate on a
// request that carries it. It is a genuine Principal of g: g's
// requirements (Require, RequireScopes, Check), which honour only
// Principals g authenticated, judge it like any other, and its Claims
// method decodes claims with the defaults filled in. [Server.WithPrincipal]
// puts it into a request for a handler test.
//
// g must trust this server (see [Server.GuardConfig]) and accept the token.
// If g refuses it, Principal panics, as on any set-up error in a test,
// with the refusal's status, reason, description and cause (never the
// token).
func (s *Server) Principal(g *tokenguard.Guard, claims Claims) *tokenguard.Principal {
	if g == nil {
		panic("oauthtest: Principal with a nil Guard")
	}
	token := s.Mint(claims)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	p, err := g.Authenticate(r)
	if err != nil {
		msg := "oauthtest: Principal: the guard refused the token minted by " + s.Issuer + " (" + refusal(err, token) + ")"
		if errors.Is(err, tokenguard.ReasonIssuerUntrusted) {
			msg += "; a Config from Server.GuardConfig trusts this server"
		}
		panic(msg)
	}
	return p
}

// refusal describes why a guard refused token, without the token.
func refusal(err error, token string) string {
	msg := err.Error()
	var e *tokenguard.Error
	if errors.As(err, &e) && e != nil {
		msg = fmt.Sprint(e.Status)
		if e.Reason != "" {
			msg += " " + string(e.Reason)
		}
		if e.Description != "" {
			msg += ": " + e.Description
		}
		if e.Err != nil {
			msg += ": " + e.Err.Error()
		}
	}
	// The guard keeps tokens out of its causes; this holds even for a
	// ValidateClaims hook that does not.
	return strings.ReplaceAll(msg, token, "[token]")
}

// WithPrincipal returns r with Principal(g, claims) in its context
// (r.WithContext and [tokenguard.WithPrincipal]), where g.Handler would
// have put it. Handlers behind g's Require, RequireScopes or Check then
// judge that Principal, with no token in the request, and handlers see it
// through tokenguard.PrincipalFrom. A chain that starts with g.Handler
// authenticates the request's token whatever the context holds: send it a
// token from [Server.Mint], or use a [Server.BearerClient]. WithPrincipal
// panics as Principal does.
func (s *Server) WithPrincipal(r *http.Request, g *tokenguard.Guard, claims Claims) *http.Request {
	return r.WithContext(tokenguard.WithPrincipal(r.Context(), s.Principal(g, claims)))
}
