package zitadel_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The clients every test OP has.
const (
	project = "api-project" // the resource server's project: the aud tokenguard checks

	rsID, rsSecret         = "api", "api secret+/:%&"          // the resource server (introspection caller); RFC 6749 §2.3.1 form-encoding matters
	jwtID, jwtSecret       = "svc-jwt", "svc-jwt-secret"       // client_credentials, JWT access tokens
	opaqueID, opaqueSecret = "svc-opaque", "svc-opaque-secret" // client_credentials, opaque access tokens
	webID, webSecret       = "web", "web-secret"               // authorization code + refresh_token, JWT access tokens

	redirectURI = "http://127.0.0.1/cb" // never called: the test reads the code from the redirect
	resource    = "https://orders.example.test"
)

var (
	keysOnce sync.Once
	rsaKeys  [2]*signingKey
)

// testKeys are the two RS256 keys of every OP (generated once: RSA key
// generation under -race is slow): the first signs from the start, the
// second is what rotation switches to.
func testKeys(t testing.TB) [2]*signingKey {
	keysOnce.Do(func() {
		for i, kid := range []string{"key-1", "key-2"} {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys[i] = &signingKey{kid: kid, key: k}
		}
	})
	return rsaKeys
}

// zop is one zitadel/oidc OpenID provider on 127.0.0.1.
type zop struct {
	issuer string // with the trailing "/", as ZITADEL's
	st     *storage
	srv    *httptest.Server

	jwksHits, introspections atomic.Int64
}

func newOP(t testing.TB) *zop {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &zop{issuer: "http://" + l.Addr().String() + "/"}
	keys := testKeys(t)
	z.st = newStorage(keys[0])
	z.st.issuer = z.issuer
	cc := []oidc.GrantType{oidc.GrantTypeClientCredentials}
	z.st.addClient(&client{id: rsID, secret: rsSecret, project: project})
	z.st.addClient(&client{id: jwtID, secret: jwtSecret, tokenType: op.AccessTokenTypeJWT, grantTypes: cc})
	z.st.addClient(&client{id: opaqueID, secret: opaqueSecret, tokenType: op.AccessTokenTypeBearer, grantTypes: cc})
	z.st.addClient(&client{
		id: webID, secret: webSecret, tokenType: op.AccessTokenTypeJWT, redirectURIs: []string{redirectURI},
		grantTypes: []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken},
	})

	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		t.Fatal(err)
	}
	provider, err := op.NewOpenIDProvider(z.issuer, &op.Config{
		CryptoKey:             cryptoKey, // encrypts opaque access tokens (A256GCMKW JWE)
		CryptoKeyId:           "opaque-1",
		GrantTypeRefreshToken: true,
	}, z.st, op.WithAllowInsecure()) // http://127.0.0.1 issuer
	if err != nil {
		t.Fatal(err)
	}
	z.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/keys":
			z.jwksHits.Add(1)
		case "/oauth/introspect":
			z.introspections.Add(1)
		}
		provider.ServeHTTP(w, r)
	}))
	z.srv.Listener.Close()
	z.srv.Listener = l
	z.srv.Start()
	t.Cleanup(z.srv.Close)
	return z
}

// guard builds a tokenguard.Guard from the OP's metadata (Config.Issuer is
// the OP's issuer, trailing "/" and all) with the resource server's
// introspection credentials. mod adjusts the configuration.
func (z *zop) guard(t testing.TB, mod func(*tokenguard.Config)) *tokenguard.Guard {
	t.Helper()
	cfg := tokenguard.Config{
		Issuer:            z.issuer,
		Resource:          resource,
		Audience:          project, // ZITADEL's aud is the project id (asked for with the aud scope)
		InsecureAllowHTTP: true,    // the OP is on http://127.0.0.1
		Introspection:     tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
	}
	if mod != nil {
		mod(&cfg)
	}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// tokenResponse is the token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Scope        string `json:"scope"`
}

// post sends a form with client_secret_basic and returns status and body.
func (z *zop) post(t testing.TB, path, id, secret string, form url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", z.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func (z *zop) tokenRequest(t testing.TB, id, secret string, form url.Values) tokenResponse {
	t.Helper()
	status, b := z.post(t, "oauth/token", id, secret, form)
	if status != http.StatusOK {
		t.Fatalf("token endpoint: %d %s", status, b)
	}
	var tr tokenResponse
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatalf("token response %s: %v", b, err)
	}
	return tr
}

// clientCredentials gets an access token for client id with scopes.
func (z *zop) clientCredentials(t testing.TB, id, secret string, scopes ...string) tokenResponse {
	t.Helper()
	return z.tokenRequest(t, id, secret, url.Values{"grant_type": {"client_credentials"}, "scope": {strings.Join(scopes, " ")}})
}

// introspect asks the OP directly, as the resource server, for the record.
func (z *zop) introspect(t testing.TB, tok string) map[string]any {
	t.Helper()
	status, b := z.post(t, "oauth/introspect", rsID, rsSecret, url.Values{"token": {tok}})
	if status != http.StatusOK {
		t.Fatalf("introspection: %d %s", status, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("introspection answer %s: %v", b, err)
	}
	return m
}

// revoke revokes tok at the OP's revocation endpoint (RFC 7009) as the
// client it was issued to.
func (z *zop) revoke(t testing.TB, id, secret, tok, hint string) {
	t.Helper()
	form := url.Values{"token": {tok}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	if status, b := z.post(t, "revoke", id, secret, form); status != http.StatusOK {
		t.Fatalf("revocation: %d %s", status, b)
	}
}

// codeFlow runs the authorization code flow for user with the web client
// (op's one flow here that yields a refresh token: it needs offline_access)
// and returns the token response.
func (z *zop) codeFlow(t testing.TB, user string, scopes ...string) tokenResponse {
	t.Helper()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	location := func(u string) *url.URL {
		t.Helper()
		res, err := noRedirect.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc, err := res.Location()
		if err != nil {
			t.Fatalf("GET %s: %d, no redirect: %v", u, res.StatusCode, err)
		}
		return loc
	}
	q := url.Values{
		"client_id": {webID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {strings.Join(scopes, " ")}, "state": {"s1"}, "nonce": {"n1"},
	}
	login := location(z.issuer + "authorize?" + q.Encode()) // op → the client's login URL
	id := login.Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("authorize redirected to %s, not to the login", login)
	}
	if err := z.st.login(id, user); err != nil {
		t.Fatal(err)
	}
	cb := location(z.issuer + "authorize/callback?id=" + url.QueryEscape(id)) // op → redirect_uri?code=…
	code := cb.Query().Get("code")
	if code == "" {
		t.Fatalf("callback redirected to %s, without a code", cb)
	}
	return z.tokenRequest(t, webID, webSecret, url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
	})
}

// logJWT records a JWS's header and claims.
func logJWT(t *testing.T, what, tok string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%s: %d parts, want a JWS", what, len(parts))
	}
	header, claims = segment(t, parts[0]), segment(t, parts[1])
	logJSON(t, what+" header", header)
	logJSON(t, what+" claims", claims)
	return header, claims
}
