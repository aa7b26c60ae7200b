package fositeinterop

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/storage"
	"github.com/ory/fosite/token/jwt"
)

// The parties every test uses. The resource is this API's identifier: the
// audience tokens are requested for and the one tokenguard checks.
const (
	resource      = "https://api.example.test/orders"
	metadataURL   = "https://api.example.test/.well-known/oauth-protected-resource/orders"
	otherAudience = "https://other.example.test/billing"

	// The resource server's own client at fosite, for introspection only.
	// The secret has characters that RFC 6749 §2.3.1 form-encodes in
	// client_secret_basic, which fosite decodes (url.QueryUnescape).
	rsClientID = "orders-api"
	rsSecret   = "rs secret+/=:%&"

	// A machine client (client-credentials grant).
	ccClientID = "orders-worker"
	ccSecret   = "worker-secret"

	// Its twin whose access tokens fosite issues already expired (a
	// per-client lifespan of -2 minutes, past tokenguard's 30 s leeway).
	expiredClientID = "expired-worker"

	// An app using the password grant with the offline scope, the flow
	// that gives refresh tokens without a browser.
	appClientID = "orders-app"
	appSecret   = "app-secret"
	username    = "alice"
	password    = "alice-password"
)

type strategy int

const (
	jwtStrategy  strategy = iota // oauth2.DefaultJWTStrategy, access tokens are JWTs
	hmacStrategy                 // oauth2.HMACSHAStrategy, access tokens are opaque ory_at_…
)

func (s strategy) String() string {
	if s == jwtStrategy {
		return "jwt"
	}
	return "hmac"
}

type asOptions struct {
	strategy strategy
	// stockSession hands fosite an empty oauth2.JWTSession, as fosite's own
	// integration tests do, instead of filling sub and client_id.
	stockSession bool
	// announceTokenUse adds token_use and token_type to each active
	// introspection answer, from fosite's IntrospectionResponder, as Ory
	// Hydra does. fosite's own WriteIntrospectionResponse writes neither.
	announceTokenUse bool
	// disableRefreshTokenValidation sets fosite.Config's
	// DisableRefreshTokenValidation: introspection judges access tokens only.
	disableRefreshTokenValidation bool
}

// authServer is an authorization server composed from fosite, on loopback.
type authServer struct {
	t        testing.TB
	opts     asOptions
	srv      *httptest.Server
	issuer   string
	config   *fosite.Config
	store    *storage.MemoryStore
	provider fosite.OAuth2Provider

	mu        sync.Mutex
	signing   *jose.JSONWebKey  // the JWT strategy's current private key
	published []jose.JSONWebKey // the public keys the JWK Set serves

	jwksHits       atomic.Int64
	introspections atomic.Int64
	answers        []string // introspection answers, as sent
}

func newAuthServer(t testing.TB, opts asOptions) *authServer {
	t.Helper()
	as := &authServer{t: t, opts: opts}
	mux := http.NewServeMux()
	as.srv = httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(as.srv.Close)
	as.issuer = as.srv.URL

	as.config = &fosite.Config{
		AccessTokenLifespan:  time.Hour,
		RefreshTokenLifespan: 24 * time.Hour,
		AccessTokenIssuer:    as.issuer, // the JWT strategy's iss
		IDTokenIssuer:        as.issuer,
		TokenURL:             as.issuer + "/oauth2/token",
		GlobalSecret:         []byte("a global secret of 32 bytes!!!!!"),
		HashCost:             4, // bcrypt's minimum: client secrets are checked on every call

		DisableRefreshTokenValidation: opts.disableRefreshTokenValidation,
	}
	as.store = storage.NewMemoryStore()
	as.registerClients()

	switch opts.strategy {
	case jwtStrategy:
		k := newECKey(t, "es256-1")
		as.signing = k
		as.published = []jose.JSONWebKey{k.Public()}
		keyGetter := func(context.Context) (interface{}, error) {
			as.mu.Lock()
			defer as.mu.Unlock()
			return as.signing, nil
		}
		as.provider = compose.Compose(as.config, as.store,
			compose.NewOAuth2JWTStrategy(keyGetter, compose.NewOAuth2HMACStrategy(as.config), as.config),
			compose.OAuth2ClientCredentialsGrantFactory,
			compose.OAuth2ResourceOwnerPasswordCredentialsFactory,
			compose.OAuth2RefreshTokenGrantFactory,
			compose.OAuth2TokenIntrospectionFactory,
			compose.OAuth2TokenRevocationFactory,
		)
	case hmacStrategy:
		// Every OAuth 2.0 and OpenID handler, HMAC access and refresh
		// tokens; the key signs ID tokens only, and none is asked for.
		idKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		as.provider = compose.ComposeAllEnabled(as.config, as.store, idKey)
	}

	mux.HandleFunc("GET /.well-known/oauth-authorization-server", as.serveMetadata)
	mux.HandleFunc("GET /.well-known/jwks.json", as.serveJWKS)
	mux.HandleFunc("POST /oauth2/token", as.serveToken)
	mux.HandleFunc("POST /oauth2/introspect", as.serveIntrospect)
	mux.HandleFunc("POST /oauth2/revoke", as.serveRevoke)
	return as
}

func (as *authServer) registerClients() {
	hash := func(secret string) []byte {
		h, err := as.config.GetSecretsHasher(context.Background()).Hash(context.Background(), []byte(secret))
		if err != nil {
			as.t.Fatal(err)
		}
		return h
	}
	as.store.Clients[rsClientID] = &fosite.DefaultClient{
		ID: rsClientID, Secret: hash(rsSecret),
		// Introspection needs no grant; fosite only authenticates the client.
	}
	as.store.Clients[ccClientID] = &fosite.DefaultClient{
		ID: ccClientID, Secret: hash(ccSecret),
		GrantTypes: []string{"client_credentials"},
		Scopes:     []string{"orders:read", "orders:write"},
		Audience:   []string{resource, otherAudience},
	}
	expired := -2 * time.Minute
	as.store.Clients[expiredClientID] = &fosite.DefaultClientWithCustomTokenLifespans{
		DefaultClient: &fosite.DefaultClient{
			ID: expiredClientID, Secret: hash(ccSecret),
			GrantTypes: []string{"client_credentials"},
			Scopes:     []string{"orders:read"},
			Audience:   []string{resource},
		},
		TokenLifespans: &fosite.ClientLifespanConfig{ClientCredentialsGrantAccessTokenLifespan: &expired},
	}
	as.store.Clients[appClientID] = &fosite.DefaultClient{
		ID: appClientID, Secret: hash(appSecret),
		GrantTypes: []string{"password", "refresh_token"},
		Scopes:     []string{"orders:read", "offline"},
		Audience:   []string{resource},
	}
	as.store.Users[username] = storage.MemoryUserRelation{Username: username, Password: password}
}

// serveMetadata is the RFC 8414 document; fosite serves no discovery.
// With the HMAC strategy no access token is signed, and it announces no
// jwks_uri: tokenguard.New refuses an empty JWK Set ("no usable key").
func (as *authServer) serveMetadata(w http.ResponseWriter, r *http.Request) {
	m := map[string]any{
		"issuer":                                as.issuer,
		"token_endpoint":                        as.issuer + "/oauth2/token",
		"jwks_uri":                              as.issuer + "/.well-known/jwks.json",
		"introspection_endpoint":                as.issuer + "/oauth2/introspect",
		"revocation_endpoint":                   as.issuer + "/oauth2/revoke",
		"response_types_supported":              []string{"code", "token"},
		"grant_types_supported":                 []string{"client_credentials", "password", "refresh_token"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		// fosite's introspection handler reads HTTP Basic or a bearer
		// token, never client_secret_post.
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post"},
	}
	if as.opts.strategy == hmacStrategy {
		delete(m, "jwks_uri")
	}
	writeJSON(w, m)
}

// serveJWKS publishes the JWT strategy's public keys.
func (as *authServer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	as.jwksHits.Add(1)
	as.mu.Lock()
	set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey{}, as.published...)}
	as.mu.Unlock()
	w.Header().Set("Cache-Control", "max-age=3600")
	writeJSON(w, set)
}

// serveToken is fosite's token endpoint, with what an integrator must add:
// granting the requested scopes and audience (fosite grants none by itself
// for these grants), and, for the JWT strategy, the sub and client_id claims
// (fosite's DefaultJWTStrategy writes neither).
func (as *authServer) serveToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var session fosite.Session
	if as.opts.strategy == jwtStrategy {
		session = &oauth2.JWTSession{}
	} else {
		session = &fosite.DefaultSession{}
	}
	ar, err := as.provider.NewAccessRequest(ctx, r, session)
	if err != nil {
		as.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	if !ar.GetGrantTypes().ExactOne("refresh_token") {
		// The refresh grant carries the original grant's scopes and audience.
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		for _, a := range ar.GetRequestedAudience() {
			ar.GrantAudience(a)
		}
	}
	clientID := ar.GetClient().GetID()
	if ar.GetGrantTypes().ExactOne("client_credentials") && !as.opts.stockSession {
		// The client acts for itself: it is the subject, as Hydra does.
		switch s := ar.GetSession().(type) {
		case *oauth2.JWTSession:
			s.SetSubject(clientID)
		case *fosite.DefaultSession:
			s.SetSubject(clientID)
		}
	}
	if s, ok := ar.GetSession().(*oauth2.JWTSession); ok && !as.opts.stockSession {
		// The password grant sets only the session's Subject (to what
		// MemoryStore.Authenticate returns, a fresh UUID); the JWT strategy
		// reads the claims' Subject, so without this the JWT has no sub.
		c := s.GetJWTClaims().(*jwt.JWTClaims)
		if c.Subject == "" {
			c.Subject = s.Subject
		}
		if c.Extra == nil {
			c.Extra = map[string]interface{}{}
		}
		c.Extra["client_id"] = clientID
	}
	resp, err := as.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		as.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	as.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// serveIntrospect is fosite's introspection handler, recording each answer.
func (as *authServer) serveIntrospect(w http.ResponseWriter, r *http.Request) {
	as.introspections.Add(1)
	ctx := r.Context()
	var session fosite.Session = &fosite.DefaultSession{}
	if as.opts.strategy == jwtStrategy {
		session = &oauth2.JWTSession{}
	}
	rec := httptest.NewRecorder()
	ir, err := as.provider.NewIntrospectionRequest(ctx, r, session)
	if err != nil {
		as.provider.WriteIntrospectionError(ctx, rec, err)
	} else {
		as.provider.WriteIntrospectionResponse(ctx, rec, ir)
	}
	body := rec.Body.Bytes()
	if err == nil && ir.IsActive() && as.opts.announceTokenUse {
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			m["token_use"] = string(ir.GetTokenUse())
			if tt := ir.GetAccessTokenType(); tt != "" {
				m["token_type"] = tt
			}
			body, _ = json.Marshal(m)
		}
	}
	as.mu.Lock()
	as.answers = append(as.answers, strings.TrimSpace(string(body)))
	as.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(body)
}

// serveRevoke is fosite's RFC 7009 revocation handler.
func (as *authServer) serveRevoke(w http.ResponseWriter, r *http.Request) {
	err := as.provider.NewRevocationRequest(r.Context(), r)
	as.provider.WriteRevocationResponse(r.Context(), w, err)
}

// lastAnswer is the last introspection answer fosite sent.
func (as *authServer) lastAnswer() string {
	as.mu.Lock()
	defer as.mu.Unlock()
	if len(as.answers) == 0 {
		return ""
	}
	return as.answers[len(as.answers)-1]
}

// rotate makes k the signing key and publishes it beside the old ones.
func (as *authServer) rotate(k *jose.JSONWebKey) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.signing = k
	as.published = append(as.published, k.Public())
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
}

// token calls the token endpoint with client_secret_basic.
func (as *authServer) token(t testing.TB, clientID, secret string, form url.Values) tokenResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, as.issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint: %d %s", resp.StatusCode, body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

// clientCredentials gets a token for the machine client.
func (as *authServer) clientCredentials(t testing.TB, clientID, scope, audience string) tokenResponse {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}
	if audience != "" {
		form.Set("audience", audience)
	}
	return as.token(t, clientID, ccSecret, form)
}

// passwordGrant gets an access and a refresh token for alice.
func (as *authServer) passwordGrant(t testing.TB) tokenResponse {
	t.Helper()
	tr := as.token(t, appClientID, appSecret, url.Values{
		"grant_type": {"password"}, "username": {username}, "password": {password},
		"scope": {"orders:read offline"}, "audience": {resource},
	})
	if tr.RefreshToken == "" {
		t.Fatal("the password grant with scope offline gave no refresh token")
	}
	return tr
}

// revoke revokes token at fosite with the credentials of the client it was
// issued to (fosite refuses to revoke another client's token).
func (as *authServer) revoke(t testing.TB, clientID, secret, token string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, as.issuer+"/oauth2/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation endpoint: %d %s", resp.StatusCode, body)
	}
}

func newECKey(t testing.TB, kid string) *jose.JSONWebKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
}

func newRSAKey(t testing.TB, kid string) *jose.JSONWebKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}
}

func writeJSON(w http.ResponseWriter, v any) {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b.Bytes())
}
