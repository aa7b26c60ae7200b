package introspect

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tokenguard/tokenguard/internal/fetch"
	"github.com/tokenguard/tokenguard/jwks"
)

// AuthMethod is how the client authenticates to the introspection endpoint.
type AuthMethod string

// The client authentication methods. The string values of the first three
// are the names registered for RFC 8414's *_endpoint_auth_methods_supported.
const (
	// AuthClientSecretBasic sends ClientID and ClientSecret in an HTTP Basic
	// Authorization header, each form-urlencoded before base64 (RFC 6749
	// §2.3.1), so a ':' in the id cannot split it.
	AuthClientSecretBasic AuthMethod = "client_secret_basic"
	// AuthClientSecretPost sends client_id and client_secret in the form
	// body (RFC 6749 §2.3.1).
	AuthClientSecretPost AuthMethod = "client_secret_post"
	// AuthNone sends no client credentials (an endpoint on a private
	// network, for example).
	AuthNone AuthMethod = "none"
	// AuthBearer sends "Authorization: Bearer <token>" (RFC 7662 §2.1 allows
	// it): Config.BearerToken, or a token obtained with the
	// client_credentials grant from Config.TokenEndpoint.
	AuthBearer AuthMethod = "bearer"
)

// TokenTypeHintAccessToken is the token_type_hint sent when
// Config.SendTokenTypeHint is set.
const TokenTypeHintAccessToken = "access_token"

// Config configures a Client. The zero value of every field but Endpoint is
// usable and strict; each field says its default.
type Config struct {
	// Endpoint is the introspection endpoint URL (RFC 7662 §2), for example
	// the authorization server metadata's introspection_endpoint. Required;
	// https unless InsecureAllowHTTP.
	Endpoint string

	// AuthMethod selects the client authentication. The zero value means
	// New chooses:
	//   - AuthBearer when BearerToken or TokenEndpoint is set;
	//   - otherwise, when SupportedAuthMethods is non-empty: with a ClientID,
	//     client_secret_basic if listed, else client_secret_post if listed;
	//     without a ClientID, none if listed; anything else is an error;
	//   - otherwise AuthClientSecretBasic with a ClientID, AuthNone without.
	AuthMethod AuthMethod
	// SupportedAuthMethods is what the server announces: its metadata's
	// introspection_endpoint_auth_methods_supported, or when that is absent
	// its token_endpoint_auth_methods_supported. Only read when AuthMethod
	// is empty. The zero value means unknown.
	SupportedAuthMethods []string
	// ClientID and ClientSecret are this resource server's credentials at
	// the authorization server: for client_secret_basic and
	// client_secret_post, and for the client_credentials grant of
	// AuthBearer with a TokenEndpoint.
	ClientID     string
	ClientSecret string
	// BearerToken is a static token for AuthBearer. It is sent as is and
	// never refreshed. Set either BearerToken or TokenEndpoint, not both.
	BearerToken string
	// TokenEndpoint is where AuthBearer obtains its token with the
	// client_credentials grant (RFC 6749 §4.4), authenticating with
	// ClientID and ClientSecret in client_secret_basic form. The token is
	// kept and fetched again shortly before its expires_in runs out (the
	// last fifth of its lifetime, at most 30 seconds early), after the
	// introspection endpoint answers 401 (once per call), and never by two
	// calls at once. Without expires_in it is kept until a 401.
	TokenEndpoint string
	// TokenScopes are sent as the scope of the client_credentials request.
	// The zero value sends no scope.
	TokenScopes []string

	// SendTokenTypeHint sends token_type_hint=access_token. The zero value
	// sends no hint: some servers reject parameters they do not know.
	SendTokenTypeHint bool
	// TrustedIssuers, when non-empty, lists the accepted values of an
	// active response's iss: a response naming another issuer is a
	// TokenError. A response without iss is accepted. The zero value
	// accepts any iss (the endpoint is trusted to speak for itself).
	TrustedIssuers []string
	// Audiences, when non-empty, are the accepted audiences: an active
	// response's aud (a string or an array of strings) must contain at
	// least one of them; otherwise the response is a TokenError. A response
	// without aud is accepted: RFC 7662 makes aud optional and many servers
	// omit it, and the server that issued the token is the one vouching for
	// it. The zero value skips the check.
	Audiences []string
	// RequireAudience refuses an active response without aud (a
	// TokenError), for servers that issue tokens without an audience
	// unless asked for one (fosite, panva's oidc-provider): such a token
	// would otherwise be good at every resource server of the issuer. The
	// zero value accepts a response without aud.
	RequireAudience bool

	// ResponseKeys, when set, asks for signed JWT responses (RFC 9701,
	// Accept: application/token-introspection+jwt) and verifies them with
	// these keys. Plain JSON answers are then rejected. The zero value
	// means plain JSON responses (RFC 7662). The caller owns the Set and
	// closes it.
	ResponseKeys *jwks.Set
	// ResponseIssuer is the iss a JWT response must carry, byte for byte.
	// Required with ResponseKeys.
	ResponseIssuer string
	// ResponseAlgorithms is the allow-list of a JWT response's alg. The
	// zero value means every asymmetric algorithm supported.
	ResponseAlgorithms []string

	// HTTPClient sends the requests. The zero value means
	// http.DefaultClient. Redirects are never followed, whatever the
	// client's policy: a redirect would carry the token and the
	// credentials to another URL.
	HTTPClient *http.Client
	// Timeout bounds one Introspect call, including obtaining a bearer
	// token and the retry after a 401. The zero value means 10 seconds.
	Timeout time.Duration
	// MaxBytes caps the size of a response body. The zero value means
	// 64 KiB.
	MaxBytes int64
	// InsecureAllowHTTP accepts http:// endpoint URLs. The zero value means
	// https only. Set it only for tests and development.
	InsecureAllowHTTP bool
	// Now is the clock for exp/nbf checks and bearer token expiry. The zero
	// value means time.Now.
	Now func() time.Time
	// Leeway is the clock skew allowed on an answer's exp and nbf, as for
	// a JWT's: servers that send nbf (Ory Hydra does) would otherwise see
	// fresh tokens refused whenever this clock is a little behind theirs.
	// The zero value means none.
	Leeway time.Duration
}

const (
	defaultTimeout  = 10 * time.Second
	defaultMaxBytes = 64 << 10
)

// New checks cfg and builds a Client. It makes no request.
func New(cfg Config) (*Client, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("introspect: Endpoint is required")
	}
	if _, err := fetch.CheckURL(cfg.Endpoint, cfg.InsecureAllowHTTP); err != nil {
		return nil, fmt.Errorf("introspect: Endpoint: %w", err)
	}
	if cfg.Timeout < 0 || cfg.MaxBytes < 0 {
		return nil, errors.New("introspect: Timeout and MaxBytes must not be negative")
	}
	method, err := chooseAuthMethod(&cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		endpoint:  cfg.Endpoint,
		method:    method,
		id:        cfg.ClientID,
		secret:    cfg.ClientSecret,
		hint:      cfg.SendTokenTypeHint,
		issuers:   slices.Clone(cfg.TrustedIssuers),
		audiences: slices.Clone(cfg.Audiences),
		needAud:   cfg.RequireAudience,
		keys:      cfg.ResponseKeys,
		respIss:   cfg.ResponseIssuer,
		respAlgs:  slices.Clone(cfg.ResponseAlgorithms),
		hc:        noRedirects(cfg.HTTPClient),
		timeout:   cfg.Timeout,
		maxBytes:  cfg.MaxBytes,
		now:       cfg.Now,
		leeway:    max(cfg.Leeway, 0),
	}
	if c.timeout == 0 {
		c.timeout = defaultTimeout
	}
	if c.maxBytes == 0 {
		c.maxBytes = defaultMaxBytes
	}
	if c.now == nil {
		c.now = time.Now
	}
	switch method {
	case AuthClientSecretBasic, AuthClientSecretPost:
		if cfg.ClientID == "" || cfg.ClientSecret == "" {
			return nil, fmt.Errorf("introspect: AuthMethod %s needs ClientID and ClientSecret", method)
		}
	case AuthBearer:
		switch {
		case cfg.BearerToken != "" && cfg.TokenEndpoint != "":
			return nil, errors.New("introspect: set BearerToken or TokenEndpoint, not both")
		case cfg.BearerToken != "":
			c.bearer = cfg.BearerToken
		case cfg.TokenEndpoint != "":
			if _, err := fetch.CheckURL(cfg.TokenEndpoint, cfg.InsecureAllowHTTP); err != nil {
				return nil, fmt.Errorf("introspect: TokenEndpoint: %w", err)
			}
			if cfg.ClientID == "" || cfg.ClientSecret == "" {
				return nil, errors.New("introspect: TokenEndpoint needs ClientID and ClientSecret for the client_credentials grant")
			}
			c.tokens = &tokenSource{
				endpoint: cfg.TokenEndpoint,
				id:       cfg.ClientID,
				secret:   cfg.ClientSecret,
				scope:    strings.Join(cfg.TokenScopes, " "),
				hc:       c.hc,
				timeout:  c.timeout,
				maxBytes: c.maxBytes,
				now:      c.now,
			}
		default:
			return nil, errors.New("introspect: AuthMethod bearer needs BearerToken or TokenEndpoint")
		}
	case AuthNone:
	default:
		return nil, fmt.Errorf("introspect: unknown AuthMethod %q", string(method))
	}
	if method != AuthBearer && (cfg.BearerToken != "" || cfg.TokenEndpoint != "") {
		return nil, fmt.Errorf("introspect: BearerToken and TokenEndpoint need AuthMethod bearer, not %s", method)
	}
	if c.keys != nil {
		if c.respIss == "" {
			return nil, errors.New("introspect: ResponseKeys needs ResponseIssuer")
		}
		if c.id == "" {
			return nil, errors.New("introspect: ResponseKeys needs ClientID (the aud of a JWT response)")
		}
	}
	return c, nil
}

// chooseAuthMethod applies the rules documented on Config.AuthMethod.
func chooseAuthMethod(cfg *Config) (AuthMethod, error) {
	if cfg.AuthMethod != "" {
		return cfg.AuthMethod, nil
	}
	if cfg.BearerToken != "" || cfg.TokenEndpoint != "" {
		return AuthBearer, nil
	}
	list := cfg.SupportedAuthMethods
	if len(list) == 0 {
		if cfg.ClientID != "" {
			return AuthClientSecretBasic, nil
		}
		return AuthNone, nil
	}
	var prefs []AuthMethod
	if cfg.ClientID != "" {
		prefs = []AuthMethod{AuthClientSecretBasic, AuthClientSecretPost}
	} else {
		prefs = []AuthMethod{AuthNone}
	}
	for _, m := range prefs {
		if slices.Contains(list, string(m)) {
			return m, nil
		}
	}
	if cfg.ClientID == "" {
		return "", fmt.Errorf("introspect: the server requires client authentication (supports %s): set ClientID and ClientSecret", strings.Join(list, ", "))
	}
	return "", fmt.Errorf("introspect: none of the server's auth methods (%s) is client_secret_basic or client_secret_post: set AuthMethod", strings.Join(list, ", "))
}

// noRedirects returns a copy of base that never follows a redirect: the
// 3xx response comes back as is and is reported as an unexpected status.
func noRedirects(base *http.Client) *http.Client {
	if base == nil {
		base = http.DefaultClient
	}
	hc := *base
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}
