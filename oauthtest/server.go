package oauthtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Endpoint names, as used by [Server.Requests] and [Server.SetFault].
const (
	// EndpointResourceMetadata is the RFC 9728 protected-resource metadata,
	// at the root and at the path-inserted URL of [Server.Resource].
	EndpointResourceMetadata = "resource_metadata"
	// EndpointServerMetadata is the RFC 8414 authorization-server metadata.
	EndpointServerMetadata = "server_metadata"
	// EndpointOpenIDConfiguration is the OpenID Connect discovery document.
	EndpointOpenIDConfiguration = "openid_configuration"
	// EndpointJWKS is the JWK Set, {Prefix}/jwks.
	EndpointJWKS = "jwks"
	// EndpointToken is the token endpoint, {Prefix}/token.
	EndpointToken = "token"
	// EndpointRegister is the RFC 7591 registration endpoint, {Prefix}/register.
	EndpointRegister = "register"
	// EndpointIntrospect is the RFC 7662 introspection endpoint,
	// {Prefix}/introspect; see [Server.IntrospectionURL].
	EndpointIntrospect = "introspect"
	// EndpointRevoke is the RFC 7009 revocation endpoint, {Prefix}/revoke;
	// see [Server.RevocationURL].
	EndpointRevoke = "revoke"
	// EndpointAuthorize is the authorization endpoint, {Prefix}/authorize.
	// It is advertised in the metadata and answers 501 Not Implemented.
	EndpointAuthorize = "authorize"
)

func validEndpoint(name string) bool {
	switch name {
	case EndpointResourceMetadata, EndpointServerMetadata, EndpointOpenIDConfiguration,
		EndpointJWKS, EndpointToken, EndpointRegister, EndpointIntrospect, EndpointRevoke, EndpointAuthorize:
		return true
	}
	return false
}

// Options configures a [Server]. The zero value is a usable configuration.
type Options struct {
	// Prefix is the path under which the OAuth endpoints (jwks, token,
	// register, introspect, revoke, authorize) are served, such as "/v2/oauth".
	// "/" serves them at the root. This defaults to "/oauth".
	Prefix string

	// IssuerPath is appended to the server's URL to form the issuer
	// identifier, such as "/tenant", or "/" for an issuer with a trailing
	// slash. The discovery documents move accordingly (RFC 8414 §3.1 path
	// insertion, OpenID discovery below the issuer). This defaults to "",
	// meaning the issuer is the server's URL.
	IssuerPath string

	// Resource is the protected resource identifier: the "resource" of the
	// RFC 9728 document and the default "aud" of minted tokens. An absolute
	// http(s) URL without query or fragment is used as is; a path starting
	// with "/" is appended to the server's URL, which is not known before the
	// server starts. This defaults to "/api", that is the server's URL
	// followed by "/api".
	Resource string

	// Algorithms lists the JWS algorithms to generate signing keys for, one
	// key per entry; the first is the default signer. Supported: RS256, RS384,
	// RS512, PS256, PS384, PS512 (2048-bit RSA), ES256, ES384, ES512 and
	// EdDSA (Ed25519). This defaults to []string{"RS256"}.
	Algorithms []string

	// Scopes is advertised as scopes_supported in the metadata documents.
	// This defaults to the sorted union of the scopes of all registered
	// clients.
	Scopes []string

	// OpenIDOnly serves the authorization-server metadata only at the
	// OpenID discovery path; the RFC 8414 path answers 404, as on some real
	// servers. This defaults to false: both are served.
	OpenIDOnly bool

	// JWKSCacheControl is the Cache-Control header of the JWKS response;
	// "-" sends none. This defaults to "public, max-age=300".
	JWKSCacheControl string

	// TokenLifetime is the lifetime of minted and issued tokens (exp - iat,
	// and expires_in). A negative value mints tokens that have already
	// expired. This defaults to one hour.
	TokenLifetime time.Duration

	// Now is the clock used for iat, exp and client_id_issued_at, for
	// deciding at the introspection endpoint whether a token has expired, and
	// for the introspection rate limit. It may be called from several
	// goroutines at once. This defaults to time.Now.
	Now func() time.Time

	// OpaqueTokens makes the token endpoint issue opaque access tokens, as
	// [Server.MintOpaque] does, instead of JWTs. This defaults to false.
	OpaqueTokens bool

	// OpaqueTokenPrefix starts every opaque token [Server.MintOpaque] and
	// the token endpoint issue, as on servers whose tokens say whose they
	// are (Ory's "ory_at_"). It may hold only characters of a bearer token
	// (RFC 6750 b64token) and no '.', or NewServer panics. This defaults to
	// "": no prefix.
	OpaqueTokenPrefix string

	// IntrospectionAuth selects the client authentication the introspection
	// endpoint requires:
	//
	//	""                     client_secret_basic, client_secret_post or a bearer token
	//	"client_secret_basic"  only client_secret_basic
	//	"client_secret_post"   only client_secret_post
	//	"none"                 none: every call is answered and credentials are ignored,
	//	                       as on servers that expose introspection on a private port
	//
	// client_secret_basic and client_secret_post follow the token endpoint:
	// RFC 6749 §2.3.1, the id and secret form-url-encoded before base64 in
	// the Authorization header, or client_id and client_secret in the body
	// (form or JSON). The client must be registered with a secret. A bearer
	// token ("Authorization: Bearer ...") is an active access token of this
	// server (a JWT it signed or an opaque token it issued, such as one from
	// the client-credentials grant) whose client_id is a registered client.
	// Any other value makes NewServer panic. This defaults to "".
	IntrospectionAuth string

	// RejectTokenTypeHint makes the introspection endpoint answer 400
	// invalid_request to a call that has a token_type_hint parameter, or any
	// parameter other than token, client_id and client_secret, as strict
	// servers do. This defaults to false: token_type_hint is recorded (see
	// [Server.IntrospectionCalls]) and ignored, and so are unknown
	// parameters.
	RejectTokenTypeHint bool

	// IntrospectionRateLimit is the number of introspection calls each
	// client may make per IntrospectionRateWindow; the seed API allows 5 a
	// minute. Calls are counted per authenticated client id, and all calls
	// without one (IntrospectionAuth "none") share one count. A window opens
	// at a client's first call and lasts IntrospectionRateWindow, measured
	// with Now; past the limit, calls are answered 429 {"error":
	// "rate_limited"} with Retry-After set to the seconds until the window
	// ends (rounded up, at least 1); the first call after that opens a new
	// window. Calls answered 429 do not count against the limit, and calls
	// that fail authentication are answered 401 and not counted either.
	// [Server.Requests] counts every call. This defaults to 0: no limit.
	// A negative value makes NewServer panic.
	IntrospectionRateLimit int

	// IntrospectionRateWindow is the window of IntrospectionRateLimit. This
	// defaults to one minute. A negative value makes NewServer panic.
	IntrospectionRateWindow time.Duration
}

// A Server is an OAuth 2.0 authorization server listening on a system-chosen
// port of the loopback interface. Create it with [NewServer], or with
// [NewUnstartedServer] followed by [Server.Start] or [Server.StartTLS], and
// stop it with [Server.Close].
type Server struct {
	// URL is the base URL, of the form http://127.0.0.1:port (https for
	// StartTLS), with no trailing slash. It is empty until the server starts.
	URL string
	// Issuer is the issuer identifier: URL followed by Options.IssuerPath.
	// Discovery documents and minted tokens carry it exactly.
	Issuer string

	opts      Options
	ts        *httptest.Server
	closing   chan struct{}
	closeOnce sync.Once

	// Set by start before the listener serves, read-only afterwards.
	resource string
	routes   map[string]route

	mu      sync.Mutex
	keys    []*signingKey
	current map[string]*signingKey // alg -> default signer for that alg
	extra   []extraKey
	clients map[string]*client
	counts  map[string]int
	faults  map[string]*activeFault
	opaque  map[tokenHash]json.RawMessage // opaque token -> its claims
	revoked map[tokenHash]struct{}
	buckets map[string]*rateBucket // client id -> introspection calls
	calls   []IntrospectionCall
}

type route struct {
	name   string
	method string // GET (HEAD too) or POST
	handle func(http.ResponseWriter, *http.Request)
}

// NewServer starts and returns a new Server on the loopback interface
// (127.0.0.1). The caller should call Close when finished, to shut it down.
// It panics if opts is invalid.
func NewServer(opts Options) *Server {
	s := NewUnstartedServer(opts)
	s.Start()
	return s
}

// NewUnstartedServer returns a new Server with its signing keys generated and
// its listener bound, but not yet serving. Set-up such as
// [Server.RegisterClient], [Server.RotateKey], [Server.PublishExtraKey] or
// [Server.SetFault] may happen before Start or StartTLS. It panics if opts is
// invalid.
func NewUnstartedServer(opts Options) *Server {
	opts = normalize(opts)
	s := &Server{
		opts:    opts,
		closing: make(chan struct{}),
		current: make(map[string]*signingKey),
		clients: make(map[string]*client),
		counts:  make(map[string]int),
		faults:  make(map[string]*activeFault),
		opaque:  make(map[tokenHash]json.RawMessage),
		revoked: make(map[tokenHash]struct{}),
		buckets: make(map[string]*rateBucket),
	}
	for _, alg := range opts.Algorithms {
		s.addKey(alg)
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	return s
}

func normalize(o Options) Options {
	if o.Prefix == "" {
		o.Prefix = "/oauth"
	}
	if !strings.HasPrefix(o.Prefix, "/") || strings.ContainsAny(o.Prefix, "?#") {
		panic(fmt.Sprintf("oauthtest: Prefix %q must be a path starting with /", o.Prefix))
	}
	o.Prefix = strings.TrimSuffix(o.Prefix, "/")
	if o.IssuerPath != "" && (!strings.HasPrefix(o.IssuerPath, "/") || strings.ContainsAny(o.IssuerPath, "?#")) {
		panic(fmt.Sprintf("oauthtest: IssuerPath %q must be empty or a path starting with /", o.IssuerPath))
	}
	if o.Resource == "" {
		o.Resource = "/api"
	}
	if !strings.HasPrefix(o.Resource, "/") {
		u, err := url.Parse(o.Resource)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			panic(fmt.Sprintf("oauthtest: Resource %q must be a path or an absolute http(s) URL without query or fragment", o.Resource))
		}
	} else if strings.ContainsAny(o.Resource, "?#") {
		panic(fmt.Sprintf("oauthtest: Resource %q must not have a query or fragment", o.Resource))
	}
	for _, c := range []byte(o.OpaqueTokenPrefix) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_~+/", c) >= 0) {
			panic(fmt.Sprintf("oauthtest: OpaqueTokenPrefix %q may hold only letters, digits and - _ ~ + /", o.OpaqueTokenPrefix))
		}
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = []string{"RS256"}
	}
	o.Algorithms = slices.Clone(o.Algorithms)
	for i, alg := range o.Algorithms {
		if !supportedAlg(alg) {
			panic(fmt.Sprintf("oauthtest: unsupported algorithm %q", alg))
		}
		if slices.Contains(o.Algorithms[:i], alg) {
			panic(fmt.Sprintf("oauthtest: algorithm %q listed twice; use RotateKey for a second key", alg))
		}
	}
	o.Scopes = slices.Clone(o.Scopes)
	if o.JWKSCacheControl == "" {
		o.JWKSCacheControl = "public, max-age=300"
	}
	if o.TokenLifetime == 0 {
		o.TokenLifetime = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch o.IntrospectionAuth {
	case "", authNone, authBasic, authPost:
	default:
		panic(fmt.Sprintf("oauthtest: IntrospectionAuth %q must be empty, %q, %q or %q",
			o.IntrospectionAuth, authBasic, authPost, authNone))
	}
	if o.IntrospectionRateLimit < 0 {
		panic(fmt.Sprintf("oauthtest: negative IntrospectionRateLimit %d", o.IntrospectionRateLimit))
	}
	if o.IntrospectionRateWindow < 0 {
		panic(fmt.Sprintf("oauthtest: negative IntrospectionRateWindow %v", o.IntrospectionRateWindow))
	}
	if o.IntrospectionRateWindow == 0 {
		o.IntrospectionRateWindow = time.Minute
	}
	return o
}

// Start starts a server from NewUnstartedServer, serving plain HTTP.
func (s *Server) Start() {
	s.start("http")
	s.ts.Start()
}

// StartTLS starts a server from NewUnstartedServer, serving HTTPS with a
// self-signed certificate for 127.0.0.1 that [Server.Client] trusts.
func (s *Server) StartTLS() {
	s.start("https")
	s.ts.StartTLS()
}

// start fixes the URL and the routes before the listener serves anything, so
// the handlers read them without locking.
func (s *Server) start(scheme string) {
	if s.URL != "" {
		panic("oauthtest: Server already started")
	}
	s.URL = scheme + "://" + s.ts.Listener.Addr().String()
	s.Issuer = s.URL + s.opts.IssuerPath
	s.resource = s.opts.Resource
	if strings.HasPrefix(s.resource, "/") {
		s.resource = s.URL + s.resource
	}
	s.routes = make(map[string]route)
	add := func(path, name, method string, h func(http.ResponseWriter, *http.Request)) {
		if r, dup := s.routes[path]; dup {
			panic(fmt.Sprintf("oauthtest: endpoints %s and %s both at %q", r.name, name, path))
		}
		s.routes[path] = route{name: name, method: method, handle: h}
	}
	res, _ := url.Parse(s.resource) // validated by normalize
	if p := resourcePath(res); p == "" {
		add(resourceMetadataPrefix, EndpointResourceMetadata, http.MethodGet, s.resourceMetadataHandler(s.resource))
	} else {
		add(resourceMetadataPrefix+p, EndpointResourceMetadata, http.MethodGet, s.resourceMetadataHandler(s.resource))
		// The origin has a document of its own, as on the seed API.
		add(resourceMetadataPrefix, EndpointResourceMetadata, http.MethodGet,
			s.resourceMetadataHandler(res.Scheme+"://"+res.Host))
	}
	if !s.opts.OpenIDOnly {
		add(serverMetadataPath(s.opts.IssuerPath), EndpointServerMetadata, http.MethodGet, s.serveServerMetadata)
	}
	add(openIDConfigurationPath(s.opts.IssuerPath), EndpointOpenIDConfiguration, http.MethodGet, s.serveServerMetadata)
	add(s.opts.Prefix+"/jwks", EndpointJWKS, http.MethodGet, s.serveJWKS)
	add(s.opts.Prefix+"/token", EndpointToken, http.MethodPost, s.serveToken)
	add(s.opts.Prefix+"/register", EndpointRegister, http.MethodPost, s.serveRegister)
	add(s.opts.Prefix+"/introspect", EndpointIntrospect, http.MethodPost, s.serveIntrospect)
	add(s.opts.Prefix+"/revoke", EndpointRevoke, http.MethodPost, s.serveRevoke)
	add(s.opts.Prefix+"/authorize", EndpointAuthorize, http.MethodGet, serveNotImplemented)
}

// Close shuts the server down. It waits for requests in flight to finish,
// except those held by a [Fault] delay, which are aborted at once.
// Close may be called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.ts.Close()
}

// Client returns an HTTP client for requests to the server. After StartTLS
// it trusts the server's certificate. Close closes its idle connections.
func (s *Server) Client() *http.Client {
	return s.ts.Client()
}

// Resource returns the protected resource identifier: Options.Resource
// resolved against URL. It is empty until the server starts.
func (s *Server) Resource() string {
	return s.resource
}

// ResourceMetadataURL returns the URL at which the server serves the RFC 9728
// metadata for [Server.Resource]: URL + "/.well-known/oauth-protected-resource"
// + the resource's path. For a resource on this server (the default), this is
// the URL RFC 9728 §3.1 derives from the identifier; for a resource with an
// empty path (or just "/") it is the root form. When the resource has a path,
// the root document exists too, as on the seed API, and describes the
// resource's origin (scheme and host) as a resource of its own.
func (s *Server) ResourceMetadataURL() string {
	u, err := url.Parse(s.resource)
	if err != nil || s.resource == "" {
		return ""
	}
	if u.Path == "/" {
		return s.URL + resourceMetadataPrefix
	}
	return s.URL + resourceMetadataPrefix + u.EscapedPath()
}

// ServerMetadataURL returns the RFC 8414 metadata URL derived from Issuer.
// With Options.OpenIDOnly, nothing is served there.
func (s *Server) ServerMetadataURL() string {
	return s.URL + serverMetadataPath(s.opts.IssuerPath)
}

// OpenIDConfigurationURL returns Issuer (without a trailing slash) followed by
// "/.well-known/openid-configuration".
func (s *Server) OpenIDConfigurationURL() string {
	return s.URL + openIDConfigurationPath(s.opts.IssuerPath)
}

// JWKSURL returns the URL of the JWK Set, {URL}{Prefix}/jwks.
func (s *Server) JWKSURL() string { return s.URL + s.opts.Prefix + "/jwks" }

// TokenURL returns the URL of the token endpoint, {URL}{Prefix}/token.
func (s *Server) TokenURL() string { return s.URL + s.opts.Prefix + "/token" }

// IntrospectionURL returns the URL of the RFC 7662 introspection endpoint,
// {URL}{Prefix}/introspect. It takes a POST with the token as a form or as a
// JSON object ({"token": "..."}), authenticates the client as
// Options.IntrospectionAuth says (401 invalid_client otherwise), applies
// Options.IntrospectionRateLimit, and answers with Cache-Control: no-store:
// for an active token (from [Server.MintOpaque], or a JWT signed by a current
// or retired key of this server; not revoked, not expired), its claims with
// "active": true and "token_type": "Bearer" (unless the claims have their
// own); for any other token, {"active": false} and nothing else. A call whose
// Accept names application/token-introspection+jwt gets that answer as an
// RFC 9701 signed JWT instead (typ token-introspection+jwt, signed with the
// default key; iss the issuer, aud the calling client, iat now, and the
// answer in token_introspection).
func (s *Server) IntrospectionURL() string { return s.URL + s.opts.Prefix + "/introspect" }

// RevocationURL returns the URL of the RFC 7009 revocation endpoint,
// {URL}{Prefix}/revoke.
func (s *Server) RevocationURL() string { return s.URL + s.opts.Prefix + "/revoke" }

// RegistrationURL returns the URL of the registration endpoint,
// {URL}{Prefix}/register.
func (s *Server) RegistrationURL() string { return s.URL + s.opts.Prefix + "/register" }

// AuthorizationURL returns the URL of the authorization endpoint,
// {URL}{Prefix}/authorize.
func (s *Server) AuthorizationURL() string { return s.URL + s.opts.Prefix + "/authorize" }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := s.routes[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.counts[rt.name]++
	f := s.takeFault(rt.name)
	s.mu.Unlock()
	if f != nil && s.applyFault(w, r, f) {
		return
	}
	if r.Method != rt.method && (rt.method != http.MethodGet || r.Method != http.MethodHead) {
		allow := rt.method
		if allow == http.MethodGet {
			allow = "GET, HEAD"
		}
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "method "+r.Method+" not allowed")
		return
	}
	rt.handle(w, r)
}

func serveNotImplemented(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotImplemented, "unsupported", "not implemented by oauthtest")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("oauthtest: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeError writes an RFC 6749 §5.2 error response.
func writeError(w http.ResponseWriter, status int, code, description string) {
	body := map[string]string{"error": code}
	if description != "" {
		body["error_description"] = description
	}
	writeJSON(w, status, body)
}
