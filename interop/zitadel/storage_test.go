package zitadel_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// This file is the smallest in-memory op.Storage that serves the flows the
// interop tests need: client_credentials for confidential clients (one with
// JWT access tokens, one with opaque ones), the authorization code flow with
// offline_access (the one flow of op that yields a refresh token), the
// introspection caller (the resource server, client_secret_basic),
// revocation, and RS256 signing with a second key for rotation. It follows
// zitadel/oidc's example storage (example/server/storage) wherever op leaves
// a choice to the storage, so the token shapes are the ones people deploy.

// audScopePrefix/audScopeSuffix frame ZITADEL's audience scope
// (urn:zitadel:iam:org:project:id:<project>:aud): a client asks for a
// project's audience with it. The storage honours it like ZITADEL does.
const (
	audScopePrefix = "urn:zitadel:iam:org:project:id:"
	audScopeSuffix = ":aud"
)

func audScope(project string) string { return audScopePrefix + project + audScopeSuffix }

// client is one registered client. It implements op.Client.
type client struct {
	id, secret   string
	project      string // the project whose audience this client is (the resource server's)
	tokenType    op.AccessTokenType
	grantTypes   []oidc.GrantType
	redirectURIs []string
}

func (c *client) GetID() string                       { return c.id }
func (c *client) RedirectURIs() []string              { return c.redirectURIs }
func (c *client) PostLogoutRedirectURIs() []string    { return nil }
func (c *client) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *client) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType { return c.grantTypes }

// LoginURL is where op sends the browser to log in; the test "logs in" by
// reading the id from it.
func (c *client) LoginURL(id string) string            { return "/login?authRequestID=" + id }
func (c *client) AccessTokenType() op.AccessTokenType  { return c.tokenType }
func (c *client) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *client) DevMode() bool                        { return true } // http://127.0.0.1 redirect URIs
func (c *client) IsScopeAllowed(string) bool           { return true } // the aud scope is not a standard one
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return false }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// token is an issued access token.
type token struct {
	id, clientID, subject string
	audience, scopes      []string
	issuedAt, expiration  time.Time
	refreshTokenID        string
}

// refreshToken is an issued refresh token; its id is the token itself
// (a UUID, as in op's example storage).
type refreshToken struct {
	id, clientID, subject string
	audience, scopes      []string
	amr                   []string
	authTime              time.Time
	accessTokenID         string
}

// authRequest implements op.AuthRequest.
type authRequest struct {
	id, clientID, redirectURI, state, nonce string
	scopes                                  []string
	responseType                            oidc.ResponseType
	subject                                 string
	done                                    bool
	authTime                                time.Time
	code                                    string
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return audienceFor(a.clientID, a.scopes) }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return nil }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return "" }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// refreshRequest implements op.RefreshTokenRequest.
type refreshRequest struct{ rt *refreshToken }

func (r *refreshRequest) GetAMR() []string            { return r.rt.amr }
func (r *refreshRequest) GetAudience() []string       { return r.rt.audience }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.rt.authTime }
func (r *refreshRequest) GetClientID() string         { return r.rt.clientID }
func (r *refreshRequest) GetScopes() []string         { return r.rt.scopes }
func (r *refreshRequest) GetSubject() string          { return r.rt.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.rt.scopes = s }

// audienceFor is ZITADEL's rule: the client itself, plus every project
// asked for with the audience scope.
func audienceFor(clientID string, scopes []string) []string {
	var aud []string
	for _, s := range scopes {
		if p, ok := strings.CutPrefix(s, audScopePrefix); ok {
			if p, ok = strings.CutSuffix(p, audScopeSuffix); ok && p != "" {
				aud = append(aud, p)
			}
		}
	}
	return append(aud, clientID)
}

// signingKey is one RSA key, for signing (op.SigningKey) and publishing
// (op.Key).
type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) ID() string                                  { return k.kid }

type privateKey struct{ *signingKey }

func (k privateKey) Key() any { return k.key }

type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// storage implements op.Storage and op.ClientCredentialsStorage.
type storage struct {
	mu            sync.Mutex
	clients       map[string]*client
	tokens        map[string]*token
	refreshTokens map[string]*refreshToken
	authRequests  map[string]*authRequest
	lifetime      time.Duration
	signing       *signingKey   // signs new tokens
	published     []*signingKey // the key set (JWKS)
	nextID        int
	issuer        string // for iss in introspection answers
}

func newStorage(first *signingKey) *storage {
	return &storage{
		clients:       map[string]*client{},
		tokens:        map[string]*token{},
		refreshTokens: map[string]*refreshToken{},
		authRequests:  map[string]*authRequest{},
		lifetime:      5 * time.Minute,
		signing:       first,
		published:     []*signingKey{first},
	}
}

func (s *storage) addClient(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.id] = c
}

// rotate publishes next beside the current key and signs with it from now on.
func (s *storage) rotate(next *signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = append(s.published, next)
	s.signing = next
}

// retire stops publishing the key kid.
func (s *storage) retire(kid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = slices.DeleteFunc(s.published, func(k *signingKey) bool { return k.kid == kid })
}

func (s *storage) newID(prefix string) string {
	s.nextID++
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s%d-%x", prefix, s.nextID, b)
}

// issue records a new access token (and, when rtID is set, links it to that
// refresh token). The caller holds mu.
func (s *storage) issue(clientID, subject string, aud, scopes []string, rtID string) *token {
	now := time.Now().UTC()
	t := &token{
		id: s.newID("at-"), clientID: clientID, subject: subject,
		audience: aud, scopes: scopes,
		issuedAt: now, expiration: now.Add(s.lifetime),
		refreshTokenID: rtID,
	}
	s.tokens[t.id] = t
	return t
}

// --- op.AuthStorage

func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &authRequest{
		id: s.newID("ar-"), clientID: r.ClientID, redirectURI: r.RedirectURI,
		state: r.State, nonce: r.Nonce, scopes: r.Scopes, responseType: r.ResponseType,
		subject: userID,
	}
	s.authRequests[a.id] = a
	return a, nil
}

// login marks the auth request as done for subject, as a login UI would.
func (s *storage) login(id, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok {
		return errors.New("auth request not found")
	}
	a.subject, a.done, a.authTime = subject, true, time.Now().UTC()
	return nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.authRequests[id]; ok {
		return a, nil
	}
	return nil, errors.New("auth request not found")
}

func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.authRequests {
		if a.code != "" && a.code == code {
			return a, nil
		}
	}
	return nil, errors.New("code not found")
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authRequests[id]
	if !ok {
		return errors.New("auth request not found")
	}
	a.code = code
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.authRequests, id)
	return nil
}

func clientOf(r op.TokenRequest) string {
	switch r := r.(type) {
	case *authRequest:
		return r.clientID
	case *refreshRequest:
		return r.rt.clientID
	case *ccRequest:
		return r.clientID
	}
	return ""
}

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.issue(clientOf(r), r.GetSubject(), r.GetAudience(), r.GetScopes(), "")
	return t.id, t.expiration, nil
}

func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, r op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var amr []string
	var authTime time.Time
	switch r := r.(type) {
	case *authRequest:
		amr, authTime = r.GetAMR(), r.authTime
	case *refreshRequest:
		amr, authTime = r.rt.amr, r.rt.authTime
	}
	if current != "" {
		old, ok := s.refreshTokens[current]
		if !ok {
			return "", "", time.Time{}, op.ErrInvalidRefreshToken
		}
		delete(s.refreshTokens, current)
		delete(s.tokens, old.accessTokenID)
	}
	rt := &refreshToken{
		id: s.newID("rt-"), clientID: clientOf(r), subject: r.GetSubject(),
		audience: r.GetAudience(), scopes: r.GetScopes(), amr: amr, authTime: authTime,
	}
	t := s.issue(rt.clientID, rt.subject, rt.audience, rt.scopes, rt.id)
	rt.accessTokenID = t.id
	s.refreshTokens[rt.id] = rt
	return t.id, rt.id, t.expiration, nil
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, rt string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.refreshTokens[rt]; ok {
		return &refreshRequest{rt: r}, nil
	}
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.tokens {
		if t.subject == userID && t.clientID == clientID {
			delete(s.tokens, id)
			delete(s.refreshTokens, t.refreshTokenID)
		}
	}
	return nil
}

func (s *storage) RevokeToken(_ context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.tokens[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued for this client")
		}
		delete(s.tokens, tokenOrID)
		return nil
	}
	if rt, ok := s.refreshTokens[tokenOrID]; ok {
		if rt.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued for this client")
		}
		delete(s.refreshTokens, tokenOrID)
		delete(s.tokens, rt.accessTokenID)
	}
	return nil // unknown tokens: already not valid (RFC 7009 §2.2)
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, rt string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.refreshTokens[rt]; ok {
		return r.subject, r.id, nil
	}
	return "", "", op.ErrInvalidRefreshToken
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return privateKey{s.signing}, nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]op.Key, 0, len(s.published))
	for _, k := range s.published {
		keys = append(keys, publicKey{k})
	}
	return keys, nil
}

// --- op.OPStorage

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	return nil, errors.New("client not found")
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[id]; ok && c.secret != "" && c.secret == secret {
		return nil
	}
	return errors.New("invalid client credentials")
}

func (s *storage) SetUserinfoFromScopes(_ context.Context, u *oidc.UserInfo, userID, _ string, _ []string) error {
	u.Subject = userID
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, u *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens[tokenID]; !ok {
		return errors.New("token is invalid")
	}
	u.Subject = subject
	return nil
}

// SetIntrospectionFromToken answers for the resource server that calls
// (clientID). As in op's example storage and in ZITADEL itself, a token is
// active only for a caller in its audience (the caller or its project);
// op sets active.
func (s *storage) SetIntrospectionFromToken(_ context.Context, r *oidc.IntrospectionResponse, tokenID, subject, caller string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tokenID]
	if !ok {
		return errors.New("token is invalid")
	}
	if !time.Now().Before(t.expiration) {
		return errors.New("token is expired")
	}
	rs := s.clients[caller]
	if rs == nil || !slices.ContainsFunc(t.audience, func(a string) bool { return a == caller || a == rs.project }) {
		return errors.New("token is not valid for this client")
	}
	r.Scope = t.scopes
	r.ClientID = t.clientID
	r.TokenType = oidc.BearerToken
	r.Expiration = oidc.FromTime(t.expiration)
	r.IssuedAt = oidc.FromTime(t.issuedAt)
	r.NotBefore = oidc.FromTime(t.issuedAt)
	r.Subject = subject
	r.Audience = t.audience
	r.JWTID = t.id
	r.Issuer = s.issuer
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil // no private claims: the JWT carries what op puts there
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("no client keys (private_key_jwt / JWT profile) here")
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }

// --- op.ClientCredentialsStorage

// ccRequest is a client_credentials token request (op.TokenRequest).
type ccRequest struct {
	clientID string
	scopes   []string
}

func (r *ccRequest) GetSubject() string    { return r.clientID }
func (r *ccRequest) GetAudience() []string { return audienceFor(r.clientID, r.scopes) }
func (r *ccRequest) GetScopes() []string   { return r.scopes }

func (s *storage) ClientCredentials(_ context.Context, id, secret string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[id]; ok && c.secret != "" && c.secret == secret {
		return c, nil
	}
	return nil, errors.New("wrong client id or secret")
}

func (s *storage) ClientCredentialsTokenRequest(_ context.Context, id string, scopes []string) (op.TokenRequest, error) {
	return &ccRequest{clientID: id, scopes: scopes}, nil
}

var (
	_ op.Storage                  = (*storage)(nil)
	_ op.ClientCredentialsStorage = (*storage)(nil)
)
