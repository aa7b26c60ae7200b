package tokenguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokenguard/tokenguard/internal/redact"
)

// Sentinel errors for errors.Is on what Authenticate returns. Each *Error
// matches exactly one of them.
var (
	// ErrNoToken: the request carries no bearer token (401, no error code).
	ErrNoToken = errors.New("tokenguard: no bearer token")
	// ErrInvalidRequest: the request is malformed (400 invalid_request).
	ErrInvalidRequest = errors.New("tokenguard: invalid request")
	// ErrInvalidToken: the token is not acceptable (401 invalid_token).
	ErrInvalidToken = errors.New("tokenguard: invalid token")
	// ErrInsufficientScope: the token lacks a required scope (403 insufficient_scope).
	ErrInsufficientScope = errors.New("tokenguard: insufficient scope")
	// ErrInsufficientUserAuthentication: the user's authentication is too
	// weak or too old for the route (401 insufficient_user_authentication,
	// RFC 9470).
	ErrInsufficientUserAuthentication = errors.New("tokenguard: insufficient user authentication")
	// ErrUnavailable: the authorization server's keys or answers could not be
	// obtained, so the token could not be judged (503, fail closed).
	ErrUnavailable = errors.New("tokenguard: authorization server unavailable")
)

// Reason is a stable, machine-readable code for why a request was refused,
// finer than the RFC 6750 error code: an ErrorHandler or a log pipeline can
// tell "expired" from "wrong audience" without matching text. A Reason is
// also an error value for errors.Is: errors.Is(err, ReasonTokenExpired).
// The codes never change meaning; new ones may be added.
type Reason string

// Error makes a Reason usable with errors.Is.
func (r Reason) Error() string { return "tokenguard: " + string(r) }

// The reasons. Every *Error the Guard makes carries one.
const (
	ReasonTokenMissing        Reason = "token_missing"         // no bearer token (401, no error code)
	ReasonRequestInvalid      Reason = "request_invalid"       // malformed request (400)
	ReasonTokenMalformed      Reason = "token_malformed"       // not parseable, too large, bad syntax
	ReasonTokenUnrecognised   Reason = "token_unrecognised"    // an opaque token no issuer takes
	ReasonTokenExpired        Reason = "token_expired"         // exp passed (beyond the leeway)
	ReasonTokenNotYetValid    Reason = "token_not_yet_valid"   // nbf or iat in the future
	ReasonTokenNoExpiry       Reason = "token_no_expiry"       // a JWT without exp
	ReasonAudienceMismatch    Reason = "audience_mismatch"     // aud lacks every accepted audience
	ReasonSignatureInvalid    Reason = "signature_invalid"     // the signature does not verify
	ReasonAlgorithmRefused    Reason = "algorithm_not_allowed" // alg none, HMAC, outside the allow-list
	ReasonCriticalHeader      Reason = "critical_header"       // a crit header
	ReasonIssuerUntrusted     Reason = "issuer_untrusted"      // iss not a trusted issuer
	ReasonKeyUnknown          Reason = "key_unknown"           // no key of the issuer fits kid and alg
	ReasonTokenInactive       Reason = "token_inactive"        // introspection says not active (or refused)
	ReasonTokenTypeRefused    Reason = "token_type_not_accepted"
	ReasonNotAccessToken      Reason = "not_an_access_token"          // a refresh or ID token by token_use/token_type
	ReasonProofRequired       Reason = "proof_of_possession_required" // a cnf-bound token
	ReasonPolicyRejected      Reason = "policy_rejected"              // Config.ValidateClaims refused it
	ReasonScopeInsufficient   Reason = "scope_insufficient"           // 403 insufficient_scope
	ReasonRequirementNotMet   Reason = "requirement_not_met"          // 403 from a claim, role or custom requirement
	ReasonAuthenticationWeak  Reason = "authentication_insufficient"  // 401 insufficient_user_authentication (RFC 9470)
	ReasonUpstreamUnavailable Reason = "upstream_unavailable"         // 503: keys or answers could not be had
	ReasonInternal            Reason = "internal_error"               // 500: a bug
)

// reasons maps the fixed client descriptions to their reason.
var reasons = map[string]Reason{
	"malformed token":                    ReasonTokenMalformed,
	"token too large":                    ReasonTokenMalformed,
	"token is not a JWT":                 ReasonTokenUnrecognised,
	"token not recognised":               ReasonTokenUnrecognised,
	"token expired":                      ReasonTokenExpired,
	"token not yet valid":                ReasonTokenNotYetValid,
	"token issued in the future":         ReasonTokenNotYetValid,
	"token has no expiry":                ReasonTokenNoExpiry,
	"token not meant for this resource":  ReasonAudienceMismatch,
	"invalid signature":                  ReasonSignatureInvalid,
	"signature algorithm not allowed":    ReasonAlgorithmRefused,
	"unsupported critical header":        ReasonCriticalHeader,
	"untrusted issuer":                   ReasonIssuerUntrusted,
	"unknown signing key":                ReasonKeyUnknown,
	"token is not active":                ReasonTokenInactive,
	"empty token":                        ReasonTokenInactive,
	"token type not accepted":            ReasonTokenTypeRefused,
	"refresh token not accepted":         ReasonNotAccessToken,
	"not an access token":                ReasonNotAccessToken,
	"token requires proof of possession": ReasonProofRequired,
	"certificate does not match token":   ReasonProofRequired,
	"token rejected by policy":           ReasonPolicyRejected,
}

// RFC 6750 §3.1 error codes.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
	// CodeInsufficientUserAuthentication is RFC 9470's: the user must
	// authenticate again, more strongly (ACRValues) or more recently (MaxAge).
	CodeInsufficientUserAuthentication = "insufficient_user_authentication"
)

// Error is a failed authentication or authorization, carrying what RFC 6750
// lets the client see and, separately, the cause for the operator.
type Error struct {
	// Status is the HTTP status to answer with: 400, 401, 403 or 503.
	Status int
	// Code is the RFC 6750 error code; empty for a request with no token.
	Code string
	// Description is a short fixed text safe to show the client.
	Description string
	// Scopes are the scopes the route requires (insufficient_scope only).
	Scopes []string
	// ACRValues and MaxAge are what a step-up requirement asks of the
	// user's authentication (RFC 9470 §3: acr_values, max_age in seconds);
	// insufficient_user_authentication only.
	ACRValues []string
	MaxAge    time.Duration
	// RetryAfter is sent as Retry-After with a 503.
	RetryAfter time.Duration
	// Err is the cause, for logs. It is never sent to the client.
	Err error
	// Reason is the machine-readable code of the refusal; errors.Is(e,
	// ReasonTokenExpired) and the like match on it. An *Error a
	// ValidateClaims hook returns keeps the Reason it was given.
	Reason Reason
	// DPoPNonce is the nonce to send in the DPoP-Nonce header with a
	// use_dpop_nonce refusal (RFC 9449 §8); WriteError sends it. Adapters
	// answering in another protocol send it as their dpop-nonce.
	DPoPNonce string

	// introspectable marks a JWT an issuer could still vouch for by
	// introspection: unparseable (introspectAt nil: it names no issuer), or
	// naming a trusted issuer that publishes no key set (introspectAt).
	introspectable bool
	introspectAt   *issuer
	// scheme is schemeDPoP for a refusal of a DPoP proof or of a DPoP
	// request's token: its challenge is of the DPoP scheme.
	scheme string
	// dpopMode is the DPoP mode of the refused token's issuer; zero when
	// the refusal came before the issuer was known (the Guard's mode).
	dpopMode DPoPMode
}

func (e *Error) Error() string {
	if e == nil {
		return "tokenguard: <nil *Error>" // a typed nil a hook returned
	}
	var b strings.Builder
	b.WriteString("tokenguard: ")
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString(strconv.Itoa(e.Status))
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// Is matches the sentinel for e's kind, and e's Reason.
func (e *Error) Is(target error) bool {
	if e == nil {
		return false // a typed nil a hook returned, or wrapped
	}
	if r, ok := target.(Reason); ok {
		return e.Reason == r
	}
	switch target {
	case ErrNoToken:
		return e.Status == http.StatusUnauthorized && e.Code == ""
	case ErrInvalidRequest:
		return e.Code == CodeInvalidRequest
	case ErrInvalidToken:
		return e.Code == CodeInvalidToken
	case ErrInsufficientScope:
		return e.Code == CodeInsufficientScope
	case ErrInsufficientUserAuthentication:
		return e.Code == CodeInsufficientUserAuthentication
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

func errNoToken() *Error {
	return &Error{Status: http.StatusUnauthorized, Description: "bearer token required", Reason: ReasonTokenMissing}
}

func errInvalidRequest(desc string, cause error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: desc, Err: cause, Reason: ReasonRequestInvalid}
}

func errInvalidToken(desc string, cause error) *Error {
	r, ok := reasons[desc]
	if !ok {
		r = ReasonTokenInactive // a verdict of the authorization server's, in its own words
	}
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: desc, Err: cause, Reason: r}
}

func errUnavailable(retry time.Duration, cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Description: "authorization server unavailable, retry later", RetryAfter: retry, Err: cause, Reason: ReasonUpstreamUnavailable}
}

func errInsufficientScope(need []string, p *Principal) *Error {
	return &Error{
		Status:      http.StatusForbidden,
		Code:        CodeInsufficientScope,
		Description: "token lacks a required scope",
		Scopes:      need,
		Reason:      ReasonScopeInsufficient,
		Err:         scopeShortfall{need: need, had: p.Scopes, withheld: p.scopesHoldToken},
	}
}

// maxLoggedScopes bounds the scopes of a token named in a log record;
// each is bounded by quote.
const maxLoggedScopes = 32

// scopeShortfall is the cause of a 403 insufficient_scope: the scopes the
// route needs and those the token had, so that an operator can see a
// ScopeClaim that reads the wrong claim. It is formatted only when logged.
// withheld says the token's scopes hold the token itself (an answer that
// echoed it), so they are not named.
type scopeShortfall struct {
	need, had []string
	withheld  bool
}

func (s scopeShortfall) Error() string {
	if s.withheld {
		return fmt.Sprintf("required scopes %q, token's scopes %s", s.need, redact.Withheld)
	}
	return fmt.Sprintf("required scopes %q, token has %s", s.need, loggedScopes(s.had))
}

// loggedScopes is how a 403's record names a token's scopes: the first
// maxLoggedScopes, each quoted and bounded (a server's answer chose
// them), and how many more there are.
func loggedScopes(had []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, sc := range had[:min(len(had), maxLoggedScopes)] {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quote(sc))
	}
	b.WriteByte(']')
	if len(had) > maxLoggedScopes {
		fmt.Fprintf(&b, " and %d more", len(had)-maxLoggedScopes)
	}
	return b.String()
}

// tokenWasSent keeps a hook's refusal of a token from reading as "no
// token" (errors.Is(err, ErrNoToken), which Optional lets through as
// anonymous): a 401 without an RFC 6750 code gets invalid_token, as RFC
// 6750 §3.1 wants for a token that was sent, and a cause that wraps
// ErrNoToken keeps only its text.
func tokenWasSent(e *Error) *Error {
	if !errors.Is(e, ErrNoToken) && !errors.Is(e, ReasonTokenMissing) {
		return e
	}
	cp := *e
	if cp.Status == http.StatusUnauthorized && cp.Code == "" {
		cp.Code = CodeInvalidToken
		if cp.Description == "" {
			cp.Description = "token rejected by policy"
		}
	}
	if cp.Reason == ReasonTokenMissing {
		cp.Reason = ReasonPolicyRejected
	}
	cp.Err = withoutNoToken(cp.Err)
	return &cp
}

// withoutNoToken returns err, or only its text when it wraps ErrNoToken
// or an *Error that means no token.
func withoutNoToken(err error) error {
	if err != nil && (errors.Is(err, ErrNoToken) || errors.Is(err, ReasonTokenMissing)) {
		return errors.New(err.Error())
	}
	return err
}

// asError turns any error into an *Error; an error that is not one already
// becomes a 500 with no challenge, since it means a bug, not a bad token.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e != nil && validErrorStatus(e.Status) {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Description: "internal error", Err: err, Reason: ReasonInternal}
}

// validErrorStatus reports whether status can answer a failed request.
func validErrorStatus(status int) bool {
	return status >= 400 && status <= 599
}

// challenge builds the WWW-Authenticate value (RFC 6750 §3, RFC 9728 §5.1).
func challenge(realm string, e *Error, resourceMetadata string) string {
	return challengeOf("Bearer", realm, e, resourceMetadata, "")
}

// schemeDPoP marks an Error whose challenge is of the DPoP scheme.
const schemeDPoP = "DPoP"

// challengeOf builds a challenge of scheme; algs, for DPoP, is the algs
// parameter (RFC 9449 §7.1).
func challengeOf(scheme, realm string, e *Error, resourceMetadata, algs string) string {
	var b strings.Builder
	b.WriteString(scheme)
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		// RFC 6750 §3 allows neither '"' nor '\' in error, error_description
		// and scope, so those drop them; other values are escaped.
		writeQuoted(&b, value, name == "realm" || name == "resource_metadata")
		b.WriteByte('"')
		sep = ", "
	}
	if realm != "" {
		param("realm", realm)
	}
	if algs != "" {
		param("algs", algs)
	}
	if e.Code != "" {
		param("error", e.Code)
		if e.Description != "" {
			param("error_description", e.Description)
		}
	}
	if len(e.Scopes) > 0 {
		param("scope", strings.Join(e.Scopes, " "))
	}
	if len(e.ACRValues) > 0 {
		param("acr_values", strings.Join(e.ACRValues, " "))
	}
	if e.MaxAge > 0 {
		param("max_age", strconv.FormatInt(int64(e.MaxAge/time.Second), 10))
	}
	if resourceMetadata != "" {
		param("resource_metadata", resourceMetadata)
	}
	if sep == " " {
		// RFC 6750 §3: the scheme must be followed by at least one auth-param.
		param("realm", "")
	}
	return b.String()
}

// writeQuoted writes s as the inside of an RFC 9110 quoted-string, limited
// to printable ASCII; '"' and '\' are escaped, or dropped when escape is
// false. Anything else is dropped, so no value can break out of the header
// or start a new one.
func writeQuoted(b *strings.Builder, s string, escape bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			if escape {
				b.WriteByte('\\')
				b.WriteByte(c)
			}
		case c >= 0x20 && c <= 0x7e:
			b.WriteByte(c)
		}
	}
}

// Challenge returns the WWW-Authenticate value the Guard sends with err
// (RFC 6750 §3, with resource_metadata of RFC 9728 §5.1), or "" for an
// answer that carries none (503, 500). With DPoP allowed, WriteError
// sends two challenges (Bearer and DPoP, RFC 9449 §7.1) as two header
// fields; Challenge joins them with ", ", as one field may carry both. Adapters that answer in another
// protocol (gRPC metadata, a WebSocket close) use it to say exactly what
// WriteError would.
func (g *Guard) Challenge(err error) string {
	if in := g.started(); in != nil {
		return in.Challenge(err)
	}
	return strings.Join(g.challenges(asError(err), ""), ", ")
}

// Challenges returns every WWW-Authenticate value WriteError sends when it
// answers r with err, in order: one for most answers, two (the scheme r
// used first) when DPoP is allowed, none for a 503 or 500. Unlike
// Challenge it knows which scheme r used, so adapters answering in another
// protocol (gRPC metadata) say exactly what WriteError would.
func (g *Guard) Challenges(r *http.Request, err error) []string {
	if in := g.started(); in != nil {
		return in.Challenges(r, err)
	}
	scheme := ""
	if g.dpop != nil && r != nil && usesDPoP(r) {
		scheme = schemeDPoP
	}
	return g.challenges(asError(err), scheme)
}

// challenges are the WWW-Authenticate values for e, for a request that
// used scheme (schemeDPoP, or "" for Bearer or none): with DPoP enabled,
// the scheme the request used (or DPoP, where it is required) carries the
// error, and in DPoPAllowed mode the other scheme is offered beside it.
func (g *Guard) challenges(e *Error, scheme string) []string {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusBadRequest, http.StatusForbidden:
	default:
		return nil
	}
	md := g.resourceMetadataURL
	if g.dpop == nil {
		return []string{challenge(g.realm, e, md)}
	}
	if e.scheme != "" {
		scheme = e.scheme
	}
	mode := g.dpop.mode
	if e.dpopMode != 0 {
		mode = e.dpopMode
	}
	algs := g.dpop.acceptedAlgs()
	bare := &Error{}
	switch {
	case mode == DPoPRequired:
		return []string{challengeOf("DPoP", g.realm, e, md, algs)}
	case scheme == schemeDPoP:
		return []string{challengeOf("DPoP", g.realm, e, md, algs), challengeOf("Bearer", g.realm, bare, md, "")}
	case mode == DPoPDisabled:
		// Only some issuers take DPoP, and this request did not use it:
		// nothing to offer it.
		return []string{challenge(g.realm, e, md)}
	}
	return []string{challengeOf("Bearer", g.realm, e, md, ""), challengeOf("DPoP", g.realm, bare, md, algs)}
}

// retryAfterSeconds is the Retry-After of a 503: whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// Refuse prepares the refusal of r with err for an adapter that answers in
// another protocol (gRPC, a WebSocket close): the *Error (status, code,
// description, scopes) and the header fields WriteError would set, every
// WWW-Authenticate value in order, Retry-After for a 503 (whole seconds,
// at least one), Cache-Control and DPoP-Nonce. It logs the refusal as
// WriteError does. The header is the caller's to change.
func (g *Guard) Refuse(r *http.Request, err error) (*Error, http.Header) {
	if in := g.started(); in != nil {
		return in.Refuse(r, err)
	}
	if r == nil {
		r = &http.Request{URL: &url.URL{}} // logged without method and path
	}
	e := asError(err)
	h := make(http.Header, 4)
	g.refusalHeader(h, r, e)
	g.log(r, e)
	cp := *e
	return &cp, h
}

// refusalHeader sets the header fields of e's answer to r in h.
func (g *Guard) refusalHeader(h http.Header, r *http.Request, e *Error) {
	h.Set("Cache-Control", "no-store")
	for _, c := range g.Challenges(r, e) {
		h.Add("WWW-Authenticate", c)
	}
	if e.DPoPNonce != "" {
		h.Set("DPoP-Nonce", e.DPoPNonce)
	}
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds(e.RetryAfter)))
	}
}

// WriteError answers the request with the status, WWW-Authenticate challenge
// and body that err calls for. Adapters that call Authenticate themselves
// use it to answer exactly as Handler does. The headers (WWW-Authenticate,
// Retry-After, Cache-Control: no-store) are set first; the body is then
// Config.ErrorHandler's, or by default a JSON object with error,
// error_description and scope.
func (g *Guard) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if in := g.started(); in != nil {
		in.WriteError(w, r, err)
		return
	}
	e := asError(err)
	h := w.Header()
	h.Del("WWW-Authenticate")
	g.refusalHeader(h, r, e)
	g.log(r, e)
	if g.cfg.ErrorHandler != nil {
		rw := &refusalWriter{ResponseWriter: w, status: e.Status}
		g.cfg.ErrorHandler(rw, r, e)
		if !rw.wrote {
			// Nothing written (a reason the handler does not handle):
			// net/http would answer 200 OK, which a proxy or an
			// auth_request front would take for a yes.
			rw.WriteHeader(e.Status)
		}
		return
	}
	body := struct {
		Error       string `json:"error,omitempty"`
		Description string `json:"error_description,omitempty"`
		Scope       string `json:"scope,omitempty"`
	}{Error: e.Code, Description: e.Description, Scope: strings.Join(e.Scopes, " ")}
	if e.Status == http.StatusServiceUnavailable {
		body.Error = "temporarily_unavailable"
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// refusalWriter is the ResponseWriter Config.ErrorHandler gets: a body
// written, or a flush, before any status goes out with the refusal's
// status, not with net/http's implicit 200 OK. A status the handler sets
// itself is kept.
type refusalWriter struct {
	http.ResponseWriter
	status int
	wrote  bool // a final (non-1xx) status has been sent
}

func (w *refusalWriter) WriteHeader(code int) {
	if code >= 200 {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *refusalWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(w.status)
	}
	return w.ResponseWriter.Write(b)
}

// FlushError lets http.ResponseController flush, after the status.
func (w *refusalWriter) FlushError() error {
	if !w.wrote {
		w.WriteHeader(w.status)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Flush is FlushError for handlers that assert http.Flusher.
func (w *refusalWriter) Flush() { _ = w.FlushError() }

// Unwrap gives http.ResponseController the underlying writer.
func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
