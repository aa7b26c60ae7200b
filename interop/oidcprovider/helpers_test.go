package oidcprovider_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
)

// The resources and clients server.mjs configures.
const (
	resource      = "https://api.tokenguard.test/orders"
	otherResource = "https://other.tokenguard.test/"
	// Its tokens are opaque, and their introspection answers carry aud.
	opaqueResource = "https://opaque.tokenguard.test/"
	// The RFC 9728 URL tokenguard derives from resource (path inserted).
	resourceMetadata = "https://api.tokenguard.test/.well-known/oauth-protected-resource/orders"

	appID, appSecret     = "tokenguard-app", "app-secret"
	shortID, shortSecret = "tokenguard-short", "short-secret"
	rsID, rsSecret       = "tokenguard-rs", "rs-secret"
	// The resource server's client registered for signed answers (RFC 9701).
	rsJWTID, rsJWTSecret = "tokenguard-rs-jwt", "rs-jwt-secret"
)

// requireEnv makes a missing Node.js or node_modules a failure instead of a
// skip, for CI, where `npm ci` ran first and a skip would hide a breakage.
const requireEnv = "TOKENGUARD_INTEROP_REQUIRED"

// needNode skips the test when node or the npm packages are missing.
func needNode(t *testing.T) string {
	t.Helper()
	skip := t.Skipf
	if os.Getenv(requireEnv) != "" {
		skip = t.Fatalf
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("oidc-provider interop: node not found on PATH (%v); install Node.js and run `npm ci` in interop/oidcprovider", err)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "oidc-provider", "package.json")); err != nil {
		skip("oidc-provider interop: node_modules/oidc-provider missing; run `npm ci` in interop/oidcprovider (%v)", err)
	}
	return node
}

// signingKey is an RSA key as a private JWK for server.mjs.
type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

func newKey(t *testing.T, kid string) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, key: k}
}

func (k signingKey) jwk() map[string]string {
	b := func(i *big.Int) string { return base64.RawURLEncoding.EncodeToString(i.Bytes()) }
	k.key.Precompute()
	return map[string]string{
		"kty": "RSA", "kid": k.kid, "alg": "RS256", "use": "sig",
		"n": b(k.key.N), "e": b(big.NewInt(int64(k.key.E))), "d": b(k.key.D),
		"p": b(k.key.Primes[0]), "q": b(k.key.Primes[1]),
		"dp": b(k.key.Precomputed.Dp), "dq": b(k.key.Precomputed.Dq), "qi": b(k.key.Precomputed.Qinv),
	}
}

// provider is one running `node server.mjs`.
type provider struct {
	t      *testing.T
	node   string
	issuer string
	port   string
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProvider starts server.mjs on port ("0": an ephemeral one) with keys,
// the first signing, and waits until it prints its issuer. It is killed when
// the test ends (or by stop).
func startProvider(t *testing.T, node, port string, keys ...signingKey) *provider {
	t.Helper()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "server.mjs")
	cmd.Env = append(os.Environ(), "OP_PORT="+port, "OP_JWKS="+string(jwks), "OP_SIGN_KID="+keys[0].kid)
	p := &provider{t: t, node: node, cmd: cmd, done: make(chan struct{}), stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	ready := make(chan string, 1)
	cmd.Stdout = &firstLine{ch: ready}
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start node server.mjs: %v", err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cancel()
		<-p.done
		if t.Failed() {
			t.Logf("server.mjs stderr:\n%s", p.stderr.String())
		}
	})

	select {
	case line := <-ready:
		var hello struct{ Issuer string }
		if err := json.Unmarshal([]byte(line), &hello); err != nil || hello.Issuer == "" {
			t.Fatalf("server.mjs printed %q, not its issuer; stderr:\n%s", line, p.stderr.String())
		}
		p.issuer = hello.Issuer
	case <-p.done:
		t.Fatalf("server.mjs exited (%v) before it was ready; stderr:\n%s", cmd.ProcessState, p.stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("server.mjs not ready after 20s; stderr:\n%s", p.stderr.String())
	}
	u, _ := url.Parse(p.issuer)
	p.port = u.Port()
	t.Logf("oidc-provider at %s (signing kid %s), ready in %v", p.issuer, keys[0].kid, time.Since(start).Round(time.Millisecond))
	return p
}

// firstLine sends the first line written to it on ch, and drops the rest.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	sent bool
	ch   chan<- string
}

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sent {
		f.buf = append(f.buf, p...)
		if i := bytes.IndexByte(f.buf, '\n'); i >= 0 {
			f.ch <- string(f.buf[:i])
			f.sent, f.buf = true, nil
		}
	}
	return len(p), nil
}

// stop kills the server and waits for it to exit.
func (p *provider) stop() {
	p.cmd.Process.Kill()
	<-p.done
}

// token gets an access token with the client-credentials grant; resource ""
// asks for none (an opaque token).
func (p *provider) token(t *testing.T, id, secret, resource, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if resource != "" {
		form.Set("resource", resource)
	}
	if scope != "" {
		form.Set("scope", scope)
	}
	status, body := p.post(t, "/token", id, secret, form)
	if status != http.StatusOK {
		t.Fatalf("POST /token: %d %s", status, body)
	}
	var res struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal(body, &res); err != nil || res.AccessToken == "" {
		t.Fatalf("POST /token: %s (%v)", body, err)
	}
	return res.AccessToken
}

// post sends a form with client_secret_basic and returns status and body.
func (p *provider) post(t *testing.T, path, id, secret string, form url.Values) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("POST", p.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// revoke revokes token as the app client (RFC 7009); it returns the status.
func (p *provider) revoke(t *testing.T, token string) (int, []byte) {
	t.Helper()
	return p.post(t, "/token/revocation", appID, appSecret, url.Values{"token": {token}})
}

// introspect asks the provider directly, as the resource server's client.
func (p *provider) introspect(t *testing.T, token string) (int, []byte) {
	t.Helper()
	return p.post(t, "/token/introspection", rsID, rsSecret, url.Values{"token": {token}})
}

// counter counts the guard's outbound requests by path.
type counter struct {
	mu sync.Mutex
	n  map[string]int
	rt http.RoundTripper
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.URL.Path]++
	c.mu.Unlock()
	return c.rt.RoundTrip(r)
}

func (c *counter) get(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

func newCounter() *counter {
	return &counter{n: map[string]int{}, rt: http.DefaultTransport}
}

// newGuard builds a Guard for p: discovery from the issuer (OpenID
// configuration), the resource as audience, the resource server's client
// for introspection. edit adjusts the Config before New.
func newGuard(t *testing.T, p *provider, c *counter, edit func(*tokenguard.Config)) *tokenguard.Guard {
	t.Helper()
	cfg := tokenguard.Config{
		Issuer:            p.issuer,
		Resource:          resource,
		InsecureAllowHTTP: true,
		HTTPClient:        &http.Client{Transport: c, Timeout: 5 * time.Second},
		Introspection:     tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
	}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := tokenguard.New(ctx, cfg)
	if err != nil {
		t.Fatalf("tokenguard.New: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// wantChallenge is the exact WWW-Authenticate tokenguard must send for this
// module's guards: realm is the resource, resource_metadata the URL derived
// from it; code "" is a request without a token; scope is the scopes an
// insufficient_scope answer names.
func wantChallenge(code, desc string, scope ...string) string {
	parts := []string{`realm="` + resource + `"`}
	if code != "" {
		parts = append(parts, `error="`+code+`"`)
		if desc != "" {
			parts = append(parts, `error_description="`+desc+`"`)
		}
	}
	if len(scope) > 0 {
		parts = append(parts, `scope="`+strings.Join(scope, " ")+`"`)
	}
	parts = append(parts, `resource_metadata="`+resourceMetadata+`"`)
	return "Bearer " + strings.Join(parts, ", ")
}

// call sends token through g.Handler to a handler that records the
// Principal, and checks status and WWW-Authenticate exactly (challenge ""
// means none). It returns the Principal on 200.
func call(t *testing.T, g *tokenguard.Guard, token string, status int, challenge string) *tokenguard.Principal {
	t.Helper()
	return serve(t, g.Handler, token, status, challenge)
}

// serve is call through any of the guard's middleware (RequireScopes, ...).
func serve(t *testing.T, mw func(http.Handler) http.Handler, token string, status int, challenge string) *tokenguard.Principal {
	t.Helper()
	var got *tokenguard.Principal
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = tokenguard.PrincipalFrom(r.Context())
		w.WriteHeader(http.StatusOK)
	}))
	r := httptest.NewRequest("GET", "/orders", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != status {
		t.Errorf("status %d, want %d (WWW-Authenticate %q, body %s)", w.Code, status, w.Header().Get("WWW-Authenticate"), w.Body.String())
	}
	if got := w.Header().Get("WWW-Authenticate"); got != challenge {
		t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, challenge)
	}
	if status == http.StatusOK && got == nil {
		t.Error("handler not reached or no Principal")
	}
	return got
}

func isBase64URL(s string) bool {
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// shape renders a JWT's header and claims for the log.
func shape(t *testing.T, jwt string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS compact serialization: %d parts", len(parts))
	}
	dec := func(s string) map[string]any {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	return dec(parts[0]), dec(parts[1])
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func logJSON(t *testing.T, what string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	t.Logf("%s: %s", what, b)
}

// tamper changes one character in the middle of part i of a JWT (2: the
// signature), or of an opaque token (-1), to another base64url one.
func tamper(token string, part int) string {
	parts := strings.Split(token, ".")
	s := token
	if part >= 0 {
		s = parts[part]
	}
	b := []byte(s)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	if part < 0 {
		return string(b)
	}
	parts[part] = string(b)
	return strings.Join(parts, ".")
}
