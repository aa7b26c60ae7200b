package tokenguard

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"time"
)

// Config configures a Guard. Its zero value is strict; every field says its
// default, and opt-outs say Insecure in their name.
//
// Discovery starts from the first of these that is set:
//   - Issuer and JWKSURL (or JWKS, the keys themselves): no discovery at all.
//   - Issuer: RFC 8414 (falling back to OpenID discovery) for that issuer.
//   - ResourceMetadataURL, or Resource: RFC 9728 protected-resource
//     metadata, then RFC 8414 for each authorization server it lists.
type Config struct {
	// ResourceMetadataURL is this resource's RFC 9728 metadata document,
	// e.g. https://api.example.com/.well-known/oauth-protected-resource.
	// Every challenge names it in resource_metadata.
	ResourceMetadataURL string
	// Resource is this resource's identifier (RFC 9728 §1.2). Without
	// ResourceMetadataURL, the metadata URL is derived from it. It defaults
	// to the resource named by the metadata document.
	Resource string
	// Issuer skips RFC 9728: only this authorization server is trusted and
	// only its RFC 8414 / OpenID metadata is fetched.
	Issuer string
	// JWKSURL, with Issuer, skips discovery altogether.
	JWKSURL string
	// JWKS, with Issuer, is the issuer's JWK Set document itself (RFC 7517
	// §5, e.g. from os.ReadFile), for air-gapped deployments and tests:
	// nothing is discovered or fetched, the keys never go stale, and a
	// token signed with a key it lacks is refused. Rotating means a new
	// Guard. It cannot be combined with JWKSURL.
	JWKS []byte

	// Issuers trusts further authorization servers, each with its own
	// audience and algorithms, beside those discovery finds; with none of
	// ResourceMetadataURL, Resource and Issuer set, only these are trusted.
	// An entry may be a pattern (one "*") for servers with an issuer per
	// tenant; matching issuers are discovered on first use.
	Issuers []TrustedIssuer
	// MaxPatternIssuers bounds the pattern-matched issuers kept at once
	// (least recently used go first). Zero means 100.
	MaxPatternIssuers int

	// Audience is the value a token's aud must contain, for every issuer
	// without an Audience of its own (TrustedIssuer.Audience wins). It
	// defaults to Resource (RFC 8707). New fails when an issuer has no
	// audience, unless InsecureSkipAudienceCheck is set.
	Audience string
	// InsecureSkipAudienceCheck accepts tokens meant for any audience, from
	// the issuers that have no Audience of their own: an audience set in a
	// TrustedIssuer is always checked. Only for servers that put no aud in
	// access tokens. It cannot be combined with Audience.
	InsecureSkipAudienceCheck bool
	// Algorithms is the signature allow-list. It defaults to every
	// asymmetric algorithm supported: RS256/384/512, PS256/384/512,
	// ES256/384/512 and EdDSA. Symmetric algorithms and "none" are refused.
	Algorithms []string
	// Leeway is the clock skew allowed on exp, nbf and iat, for every
	// issuer without a Leeway of its own. Zero means 30s; a negative value
	// means none.
	Leeway time.Duration
	// RequireATJWTType accepts only typ "at+jwt" (RFC 9068). By default a typ
	// of "JWT" or none is accepted too, as many servers send them.
	RequireATJWTType bool
	// InsecureIgnoreTokenBinding accepts tokens bound to a key (a cnf
	// claim or introspection member: DPoP's jkt, RFC 9449; mTLS's
	// x5t#S256, RFC 8705) as plain bearer tokens, without proof of
	// possession: the binding is dropped (Principal.Binding is empty), so
	// such a token works as Bearer, and a DPoP request with it is refused
	// as one whose token is not bound to the proof's key. By default a
	// bound token must prove possession (its DPoP proof, its client
	// certificate), or gets 401 invalid_token: a stolen bound token must
	// not work for whoever holds it. Set it only where you knowingly
	// ignore the binding.
	InsecureIgnoreTokenBinding bool
	// DPoP accepts DPoP-bound tokens (RFC 9449) with their proofs. The
	// zero Mode means DPoPDisabled: DPoP-bound tokens are refused, unless
	// an issuer's TrustedIssuer.DPoP says otherwise.
	DPoP DPoPConfig
	// ClientCertificate returns the certificate the client presented, for
	// certificate-bound tokens (RFC 8705: cnf x5t#S256 must be its
	// SHA-256 thumbprint). Nil means the request's own mutual-TLS
	// connection (r.TLS.PeerCertificates[0]). Behind a TLS-terminating
	// proxy, ForwardedClientCertificate reads the header it sets; it is
	// never trusted by default. A nil certificate means none was sent.
	ClientCertificate func(r *http.Request) (*x509.Certificate, error)
	// ValidateClaims, when set, runs after every built-in check passed. An
	// error rejects the token with 401 invalid_token; return an *Error with
	// a 4xx or 5xx Status to choose the answer yourself (a nil *Error or any
	// other status still rejects, with 401 invalid_token). A token was
	// sent, so a 401 *Error without a Code gets invalid_token, and no
	// refusal of the hook ever reads as ErrNoToken (which Optional lets
	// through as anonymous).
	ValidateClaims func(ctx context.Context, p *Principal) error

	// TokenCacheSize bounds the cache of verified JWTs, keyed by SHA-256 of
	// the token: a token seen before skips parsing and the signature check,
	// while exp is checked on every hit and entries signed by a key that
	// leaves the key set are dropped at that refresh. Zero means 10,000;
	// negative turns the cache off.
	TokenCacheSize int

	// Introspection configures the opaque-token path (RFC 7662): the
	// credentials of the primary issuer and the defaults of every issuer
	// (see IntrospectionConfig for who owns what). It is off unless a client
	// id, bearer token or auth method is set here or in a TrustedIssuer.
	Introspection IntrospectionConfig
	// Fleet shares introspection answers, calls and their budget with the
	// other replicas of a fleet through a store such as Redis (see
	// FleetConfig). The zero value shares nothing.
	Fleet FleetConfig
	// RouteOpaque names the issuer an opaque token goes to, for guards in
	// which several issuers introspect and the tokens carry no prefix to
	// tell them apart (see IntrospectionConfig.TokenPrefixes). It returns
	// an issuer identifier (a trusted issuer that introspects, or one that
	// matches a pattern that does), or "" to refuse the token without a
	// call; any other answer refuses it too. The token must not be logged.
	// It is the only way an opaque token reaches a pattern (per-tenant)
	// issuer. Nil means TokenPrefixes, then the one exact issuer that
	// introspects without prefixes.
	RouteOpaque func(token string) (issuer string)

	// ScopesSupported, ResourceName and ResourceDocumentation go into the
	// document MetadataHandler serves (RFC 9728 §2). They default to empty.
	ScopesSupported       []string
	ResourceName          string
	ResourceDocumentation string

	// ScopeClaim names the claim Principal.Scopes is read from (a
	// space-separated string or an array of strings), for servers that put
	// scopes elsewhere, such as "permissions"; scope and scp are then
	// ignored. It defaults to the scope and scp claims. It costs one JSON
	// decoding of the claims per token verified.
	ScopeClaim string

	// ErrorHandler, when set, writes the body of every refusal instead of
	// the default JSON object ({"error", "error_description", "scope"}),
	// for a problem+json document or an envelope of your own. When it runs,
	// WWW-Authenticate (exactly as RFC 6750 and RFC 9728 want it),
	// Retry-After (503) and Cache-Control: no-store are already set; it sets
	// Content-Type, calls w.WriteHeader (e.Status, unless you mean to change
	// what the client is told) and writes the body; a body written, or an
	// answer left unwritten, without a status goes out with e.Status,
	// never with net/http's implicit 200 OK. e.Reason says why, for
	// the client's eyes if you wish; e.Err is the operator's cause and must
	// not be sent (it may name keys and issuers). Nil means the default.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, e *Error)

	// Realm is the realm in challenges. It defaults to the resource identifier.
	Realm string
	// AllowFormToken accepts the access_token form parameter (RFC 6750 §2.2).
	AllowFormToken bool
	// AllowQueryToken accepts the access_token query parameter (RFC 6750
	// §2.3). Tokens in URLs end up in logs; avoid it where you can.
	AllowQueryToken bool
	// TokenSources are further places a token may come from, such as a
	// cookie (CookieToken) or a WebSocket subprotocol
	// (WebSocketProtocolToken), beside the Authorization header and the
	// parameters allowed above. A request with tokens in two places is 400
	// invalid_request. They are not listed in bearer_methods_supported,
	// which knows only header, body and query. Nil means none.
	TokenSources []TokenSource
	// MaxTokenBytes caps a token's length. Zero means 64 KiB, which admits the
	// largest tokens real servers issue (group-laden Entra ID and Keycloak
	// tokens pass 16 KiB); a longer one is refused before it is parsed or
	// hashed.
	MaxTokenBytes int

	// HTTPClient makes every outbound request. Nil means http.DefaultClient.
	HTTPClient *http.Client
	// FetchTimeout bounds each metadata and key-set fetch. Zero means 10s.
	FetchTimeout time.Duration
	// MaxDocumentBytes caps each fetched document. Zero means 1 MiB.
	MaxDocumentBytes int64
	// RetryStartup makes New return a Guard even when discovery or a key
	// set cannot be fetched yet (an identity provider blip must not make a
	// deploy crash-loop): it answers every request with 503 and
	// Retry-After, and MetadataHandler too, while it retries the whole
	// start-up in the background (1s, doubling to 1 minute, with jitter),
	// and serves normally from the first success on. Guard.Ready says
	// which it is doing. Configuration errors still fail New. By default
	// New fails when the servers cannot be reached.
	RetryStartup bool
	// InsecureAllowHTTP accepts http:// URLs for discovery and keys. Only
	// for tests and development against a loopback server.
	InsecureAllowHTTP bool

	// KeyRefreshMin and KeyRefreshMax bound the background key-set refresh
	// interval taken from Cache-Control. Zero means 1 minute and 1 hour.
	KeyRefreshMin, KeyRefreshMax time.Duration
	// MaxKeysPerToken bounds the keys one token's signature is checked
	// against: those of its issuer's set that fit its alg and kid (all of
	// the alg's, for a token without kid). A token with more candidates is
	// refused, 401 "unknown signing key", and a warning tells the operator
	// why: trying them all would let every forged token cost that many
	// signature checks. Zero means 2, which covers servers that omit kid
	// (they publish one key) during a rotation.
	MaxKeysPerToken int
	// UnknownKeyCooldown is the least time between two key-set fetches
	// caused by unknown key ids. Zero means 5s.
	UnknownKeyCooldown time.Duration
	// MaxKeyStaleness is how long the last good key set is used while
	// refreshes fail; past it, requests get 503. Zero means 24 hours.
	MaxKeyStaleness time.Duration

	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Logger receives operator-facing events: refresh failures at Warn,
	// rejected tokens at Debug. It never receives a token. Nil means none.
	Logger *slog.Logger
	// Events are told every decision and every call to an authorization
	// server, for metrics and traces (see the otel module). The zero
	// value tells nobody, at the cost of a nil check.
	Events Events
}
