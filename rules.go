package tokenguard

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Requirement is one condition a route puts on an authenticated token:
// scopes (AllScopes, AnyScope), claim values (ClaimIs) or your own
// predicate (Satisfies). Requirements are checked after authentication,
// never instead of it; Require takes several, and nested Require
// middleware (a group's and a route's) all apply.
type Requirement struct {
	check func(g *Guard, p *Principal) *Error
	// scope is set on scope requirements: the scopes they name, for the
	// scope= of a 401 challenge on their route and for scopes_supported.
	scope *scopeNames
}

// scopeNames are the scopes of one scope requirement.
type scopeNames struct {
	names []string
	// seenBy is the last Guard that recorded them, so that a requirement
	// checked on every request is recorded once per Guard, for one
	// atomic load per request.
	seenBy atomic.Pointer[Guard]
}

// AllScopes requires every one of scopes. A token without them gets 403
// insufficient_scope with scope="..." naming all of them (RFC 6750 §3.1),
// so the client can ask for them.
func AllScopes(scopes ...string) Requirement {
	need := slices.Clone(scopes)
	return Requirement{check: func(g *Guard, p *Principal) *Error {
		for _, s := range need {
			if !slices.Contains(p.Scopes, s) {
				return errInsufficientScope(need, p)
			}
		}
		return nil
	}, scope: &scopeNames{names: need}}
}

// AnyScope requires at least one of scopes. The 403 names all of them.
func AnyScope(scopes ...string) Requirement {
	need := slices.Clone(scopes)
	return Requirement{check: func(g *Guard, p *Principal) *Error {
		for _, s := range need {
			if slices.Contains(p.Scopes, s) {
				return nil
			}
		}
		return errInsufficientScope(need, p)
	}, scope: &scopeNames{names: need}}
}

// AnyRole requires at least one of roles in Principal.Roles (read from the
// issuer's TokenShape.RoleClaims). A token without one gets 403.
func AnyRole(roles ...string) Requirement {
	need := slices.Clone(roles)
	return Requirement{check: func(_ *Guard, p *Principal) *Error {
		for _, r := range need {
			if slices.Contains(p.Roles, r) {
				return nil
			}
		}
		return errForbidden(fmt.Errorf("none of the roles %q", need))
	}}
}

// AllRoles requires every one of roles in Principal.Roles. A token
// without them gets 403.
func AllRoles(roles ...string) Requirement {
	need := slices.Clone(roles)
	return Requirement{check: func(_ *Guard, p *Principal) *Error {
		for _, r := range need {
			if !slices.Contains(p.Roles, r) {
				return errForbidden(fmt.Errorf("role %q missing (required: %q)", r, need))
			}
		}
		return nil
	}}
}

// ClaimIs requires claim name to equal value: a string claim equal to it,
// or an array claim containing it. A token without it gets 403.
func ClaimIs(name, value string) Requirement {
	want, _ := scalar(value) // a string is always a scalar
	return Requirement{check: func(_ *Guard, p *Principal) *Error {
		if raw, err := claimRaw(p, name); err == nil && claimEquals(raw, want) {
			return nil
		}
		return errForbidden(fmt.Errorf("claim %s does not hold %q", name, value))
	}}
}

// ClaimEquals requires claim name to equal value, a JSON scalar: a
// string, a bool, a number (any Go integer or float type; compared by
// decimal value, so 1, 1.0 and 1e0 are equal, integers beyond 2^53
// exactly, and a float as the shortest decimal that reads back as it,
// the one strconv and encoding/json write: 0.1 is the claim 0.1), or nil
// for JSON null; or an array claim to hold an element equal to it. A
// token without it gets 403. It panics when value is not a scalar: that
// is a mistake in the route's set-up, not a token to refuse.
func ClaimEquals(name string, value any) Requirement {
	want, ok := scalar(value)
	if !ok {
		panic(fmt.Sprintf("tokenguard: ClaimEquals(%q, %T): the value must be a string, bool, number or nil", name, value))
	}
	return Requirement{check: func(_ *Guard, p *Principal) *Error {
		raw, err := claimRaw(p, name)
		if err == nil && claimEquals(raw, want) {
			return nil
		}
		return errForbidden(fmt.Errorf("claim %s does not equal %v", name, value))
	}}
}

// jsonScalar is a JSON scalar in a form that compares exactly: numbers
// as canonical decimals.
type jsonScalar struct {
	kind byte // 's' string, 'b' bool, 'n' number, '0' null
	str  string
	b    bool
	num  decimal
}

// scalar converts a Go value given to ClaimEquals.
func scalar(v any) (jsonScalar, bool) {
	var text string
	switch v := v.(type) {
	case nil:
		return jsonScalar{kind: '0'}, true
	case string:
		return jsonScalar{kind: 's', str: v}, true
	case bool:
		return jsonScalar{kind: 'b', b: v}, true
	case int:
		text = strconv.FormatInt(int64(v), 10)
	case int8:
		text = strconv.FormatInt(int64(v), 10)
	case int16:
		text = strconv.FormatInt(int64(v), 10)
	case int32:
		text = strconv.FormatInt(int64(v), 10)
	case int64:
		text = strconv.FormatInt(v, 10)
	case uint:
		text = strconv.FormatUint(uint64(v), 10)
	case uint8:
		text = strconv.FormatUint(uint64(v), 10)
	case uint16:
		text = strconv.FormatUint(uint64(v), 10)
	case uint32:
		text = strconv.FormatUint(uint64(v), 10)
	case uint64:
		text = strconv.FormatUint(v, 10)
	case float32:
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return jsonScalar{}, false // no JSON number is one
		}
		text = strconv.FormatFloat(float64(v), 'g', -1, 32)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return jsonScalar{}, false
		}
		text = strconv.FormatFloat(v, 'g', -1, 64)
	case json.Number:
		text = string(v)
	default:
		return jsonScalar{}, false
	}
	d, ok := parseDecimal(text)
	return jsonScalar{kind: 'n', num: d}, ok
}

// decimal is a JSON number in canonical form: its significant digits
// (no leading or trailing zero; none for zero) and the power of ten they
// are scaled by, so that two numbers are equal exactly when their forms
// are. Nothing is expanded: math/big's Rat would build 10^1000000 for a
// claim of 1e1000000, milliseconds and megabytes for ten bytes of token.
type decimal struct {
	neg    bool
	digits string
	exp    *big.Int // nil for zero
}

// parseDecimal reads s, which must follow the JSON number grammar (RFC
// 8259 §6), in time linear in its length.
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	digitsFrom := func(j int) int {
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j
	}
	intEnd := digitsFrom(i)
	if intEnd == i || (s[i] == '0' && intEnd > i+1) {
		return decimal{}, false // no digit, or a leading zero
	}
	intPart, frac := s[i:intEnd], ""
	i = intEnd
	if i < len(s) && s[i] == '.' {
		fracEnd := digitsFrom(i + 1)
		if fracEnd == i+1 {
			return decimal{}, false
		}
		frac, i = s[i+1:fracEnd], fracEnd
	}
	exp := new(big.Int)
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		start := i
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		expEnd := digitsFrom(i)
		if expEnd == i {
			return decimal{}, false
		}
		e := strings.TrimLeft(s[i:expEnd], "0")
		if e == "" {
			e = "0"
		}
		if _, ok := exp.SetString(e, 10); !ok {
			return decimal{}, false
		}
		if s[start] == '-' {
			exp.Neg(exp)
		}
		i = expEnd
	}
	if i != len(s) {
		return decimal{}, false
	}
	// The value is (intPart frac) × 10^(exp - len(frac)).
	all := strings.TrimLeft(intPart+frac, "0")
	trimmed := strings.TrimRight(all, "0")
	if trimmed == "" {
		return decimal{}, true // zero, of either sign
	}
	d.digits = trimmed
	exp.Sub(exp, big.NewInt(int64(len(frac))))
	exp.Add(exp, big.NewInt(int64(len(all)-len(trimmed))))
	d.exp = exp
	return d, true
}

func (a decimal) equal(b decimal) bool {
	if a.digits == "" || b.digits == "" {
		return a.digits == b.digits // zero equals zero, whatever the sign
	}
	return a.neg == b.neg && a.digits == b.digits && a.exp.Cmp(b.exp) == 0
}

// claimEquals reports whether the claim's JSON is want, or an array
// holding it.
func claimEquals(raw json.RawMessage, want jsonScalar) bool {
	if got, ok := decodeScalar(raw); ok {
		return got.equal(want)
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return false
	}
	for _, e := range list {
		if got, ok := decodeScalar(e); ok && got.equal(want) {
			return true
		}
	}
	return false
}

// decodeScalar reads one JSON scalar; objects and arrays are not.
func decodeScalar(raw json.RawMessage) (jsonScalar, bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return jsonScalar{}, false
	}
	switch v.(type) {
	case nil, string, bool, json.Number:
		return scalar(v)
	}
	return jsonScalar{}, false
}

func (a jsonScalar) equal(b jsonScalar) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case 's':
		return a.str == b.str
	case 'b':
		return a.b == b.b
	case 'n':
		return a.num.equal(b.num)
	}
	return true // both null
}

// claimRaw returns the JSON of the token's claim name; an error when the
// token has none.
func claimRaw(p *Principal, name string) (json.RawMessage, error) {
	var claims map[string]json.RawMessage
	if err := p.Claims(&claims); err != nil {
		return nil, err
	}
	raw, ok := claims[name]
	if !ok {
		return nil, fmt.Errorf("no claim %s", name)
	}
	return raw, nil
}

// withRouteScopes adds the scopes reqs name to a 401 from authenticating
// on their route (RFC 6750 §3 allows scope= in any challenge), so that a
// client, such as an MCP client, asks for them when it gets a token.
func withRouteScopes(err error, reqs []Requirement) error {
	e, ok := err.(*Error)
	if !ok || e.Status != http.StatusUnauthorized || len(e.Scopes) > 0 {
		return err
	}
	var scopes []string
	for _, req := range reqs {
		if req.scope == nil {
			continue
		}
		for _, s := range req.scope.names {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	if len(scopes) == 0 {
		return err
	}
	cp := *e
	cp.Scopes = scopes
	return &cp
}

// AuthenticatedWith requires the user to have authenticated with one of
// the authentication context classes acrs (the token's acr claim, or
// introspection member; RFC 9470). A token without one of them gets 401
// insufficient_user_authentication with acr_values="...", so that the
// client sends the user back to the authorization server to step up.
func AuthenticatedWith(acrs ...string) Requirement {
	need := slices.Clone(acrs)
	return Requirement{check: func(_ *Guard, p *Principal) *Error {
		var acr string
		if raw, err := claimRaw(p, "acr"); err == nil {
			_ = json.Unmarshal(raw, &acr)
		}
		if acr != "" && slices.Contains(need, acr) {
			return nil
		}
		return errStepUp(need, 0, fmt.Errorf("acr %s is not one of %q", quote(acr), need))
	}}
}

// AuthenticatedWithin requires the user to have authenticated at most
// maxAge ago (the auth_time claim, RFC 9470). A token whose auth_time is
// older, absent or in the future gets 401 insufficient_user_authentication
// with max_age=..., so that the client asks for a fresh login.
func AuthenticatedWithin(maxAge time.Duration) Requirement {
	if maxAge < time.Second {
		panic("tokenguard: AuthenticatedWithin needs at least one second: max_age is in seconds")
	}
	return Requirement{check: func(g *Guard, p *Principal) *Error {
		var at json.Number
		raw, err := claimRaw(p, "auth_time")
		if err == nil {
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			err = d.Decode(&at)
		}
		if err != nil {
			return errStepUp(nil, maxAge, errors.New("no auth_time"))
		}
		f, err := at.Float64()
		if err != nil || math.IsInf(f, 0) || f > 1e15 || f < 0 {
			return errStepUp(nil, maxAge, errors.New("auth_time is not a time"))
		}
		when := time.Unix(int64(f), 0)
		now := g.now()
		leeway := g.leeway
		if age := now.Sub(when); age > maxAge+leeway || age < -leeway {
			return errStepUp(nil, maxAge, fmt.Errorf("authenticated %s ago, more than %s (or in the future)", age.Round(time.Second), maxAge))
		}
		return nil
	}}
}

func errStepUp(acrs []string, maxAge time.Duration, cause error) *Error {
	return &Error{
		Status:      http.StatusUnauthorized,
		Code:        CodeInsufficientUserAuthentication,
		Description: "a stronger or more recent authentication is required",
		ACRValues:   acrs,
		MaxAge:      maxAge,
		Err:         cause,
		Reason:      ReasonAuthenticationWeak,
	}
}

// Satisfies requires ok(p) to be true; desc names the rule in the
// operator's log. A token that fails it gets 403.
func Satisfies(desc string, ok func(p *Principal) bool) Requirement {
	return Requirement{check: func(_ *Guard, p *Principal) *Error {
		if ok(p) {
			return nil
		}
		return errForbidden(errors.New("requirement not met: " + desc))
	}}
}

func errForbidden(cause error) *Error {
	return &Error{
		Status:      http.StatusForbidden,
		Code:        CodeInsufficientScope,
		Description: "token does not meet this route's requirements",
		Err:         cause,
		Reason:      ReasonRequirementNotMet,
	}
}

// scopesFrom returns Principal.Scopes for a token whose claims JSON is
// claims and whose scope and scp claims make def: def itself, or with
// Config.ScopeClaim the values of that claim (a space-separated string or
// an array of strings; anything else grants none).
func (g *Guard) scopesFrom(claims []byte, def []string) []string {
	if g.cfg.ScopeClaim == "" {
		return def
	}
	m, err := decodeClaims(claims)
	if err != nil {
		return nil
	}
	raw, ok := m[g.cfg.ScopeClaim] // the name exactly: no dotted paths here
	if !ok {
		return nil
	}
	return claimStrings(raw)
}

// Require returns middleware that lets a request through only when its
// token meets every one of reqs; otherwise it answers 403 (insufficient_scope
// with the scopes needed, for scope requirements). It authenticates the
// request itself when no Handler of this Guard did before it.
func (g *Guard) Require(reqs ...Requirement) func(http.Handler) http.Handler {
	reqs = slices.Clone(reqs)
	g.noteScopes(reqs)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := g.Check(r, reqs...)
			if err != nil {
				g.WriteError(w, r, err)
				return
			}
			if cur, _ := PrincipalFrom(r.Context()); cur != p {
				g.sendNonce(w, r)
				r = r.WithContext(WithPrincipal(r.Context(), p))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Check returns the request's Principal when its token meets every one of
// reqs. It reuses the Principal a Handler of this Guard put in the
// request's context and otherwise authenticates the request. It writes
// nothing; on failure the error is an *Error for WriteError. Adapters use
// it for per-route requirements.
func (g *Guard) Check(r *http.Request, reqs ...Requirement) (*Principal, error) {
	if g.startup != nil {
		in := g.startup.guard()
		if in == nil {
			return nil, g.startup.unavailable(g.now())
		}
		return in.Check(r, reqs...)
	}
	p, ok := PrincipalFrom(r.Context())
	if !ok || p.guard != g {
		var err error
		if p, err = g.Authenticate(r); err != nil {
			return nil, withRouteScopes(err, reqs)
		}
	}
	g.noteScopes(reqs)
	for _, req := range reqs {
		if req.check == nil {
			return nil, errForbidden(errors.New("zero Requirement: build requirements with AllScopes, AnyScope, ClaimIs or Satisfies"))
		}
		if e := req.check(g, p); e != nil {
			if g.cfg.Events.Decision != nil {
				g.decision(r.Context(), Decision{Stage: StageAuthorize, Status: e.Status, Reason: e.Reason, Path: PathNone, Issuer: p.Issuer, DPoP: g.dpop != nil && usesDPoP(r)})
			}
			return nil, e
		}
	}
	return p, nil
}
