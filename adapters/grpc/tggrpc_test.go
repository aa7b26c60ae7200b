package tggrpc_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// forge changes one character of token's signature: its syntax stays, the
// signature no longer verifies.
func forge(token string) string {
	i := strings.LastIndexByte(token, '.')
	sig := []byte(token[i+1:])
	if sig[5] == 'A' {
		sig[5] = 'B'
	} else {
		sig[5] = 'A'
	}
	return token[:i+1] + string(sig)
}

// The attacker's side, unary and stream alike: every refusal has the exact
// code, message and challenge, never reaches a handler and never shows the
// token; the calls let through reach the handler with the token's
// Principal.
func TestAttacks(t *testing.T) {
	as, g := newGuard(t, nil)
	conn, rc := start(t, g, testOptions())
	past := time.Now().Add(-time.Hour)

	type tc struct {
		name   string
		method string
		auth   func() []string // the authorization values
		code   codes.Code
		msg    string // the status message; for OK, the handler's reply
		chal   string // the exact www-authenticate, "" for none
		retry  string // the exact retry-after, "" for none
	}
	invalid := func(desc string) (codes.Code, string, string) {
		return codes.Unauthenticated, desc, wantChallenge(g, "invalid_token", desc)
	}
	row := func(name, method string, auth func() []string, c codes.Code, msg, chal string) tc {
		return tc{name: name, method: method, auth: auth, code: c, msg: msg, chal: chal}
	}
	refused := func(name, method string, auth func() []string, desc string) tc {
		c, msg, chal := invalid(desc)
		return row(name, method, auth, c, msg, chal)
	}
	mint := func(c oauthtest.Claims) func() []string { return func() []string { return bearer(as.Mint(c)) } }
	cases := []tc{
		row("valid token", methodGet, mint(oauthtest.Claims{"sub": "alice"}), codes.OK, "alice jwt", ""),
		row("no token", methodGet, func() []string { return nil }, codes.Unauthenticated, "bearer token required", wantChallenge(g, "", "")),
		row("another scheme", methodGet, func() []string { return []string{"Basic YWxpY2U6c2VjcmV0"} }, codes.Unauthenticated, "bearer token required", wantChallenge(g, "", "")),
		refused("expired", methodGet, mint(oauthtest.Claims{"exp": past.Unix(), "iat": past.Add(-time.Hour).Unix()}), "token expired"),
		refused("forged signature", methodGet, func() []string { return bearer(forge(as.Mint(nil))) }, "invalid signature"),
		refused("wrong audience", methodGet, mint(oauthtest.Claims{"aud": "https://another-api.example"}), "token not meant for this resource"),
		refused("made-up opaque token", methodGet, func() []string { return bearer("made-up-opaque-token") }, "token is not active"),
		refused("JWT without an issuer", methodGet, func() []string { return bearer("eyJhbGciOiJSUzI1NiJ9.e30.c2ln") }, "untrusted issuer"),
		row("missing scope", methodCreate, mint(oauthtest.Claims{"scope": "orders:read"}), codes.PermissionDenied, "token lacks a required scope",
			wantChallenge(g, "insufficient_scope", "token lacks a required scope", `scope="`+scopeWrite+`"`)),
		row("the method's scope", methodCreate, mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read " + scopeWrite}), codes.OK, "alice jwt", ""),
		// A method the map does not name needs a valid token, no more and no less.
		row("method not in the map, no scope", methodGet, mint(oauthtest.Claims{"sub": "carol", "scope": ""}), codes.OK, "carol jwt", ""),
		row("method not in the map, no token", methodGet, func() []string { return nil }, codes.Unauthenticated, "bearer token required", wantChallenge(g, "", "")),
		// On a scoped method a 401 names the scope too (RFC 6750 §3), as
		// Guard.Check answers it.
		row("scoped method, no token", methodCreate, func() []string { return nil }, codes.Unauthenticated, "bearer token required",
			wantChallenge(g, "", "", `scope="`+scopeWrite+`"`)),
		row("two authorization values", methodGet, func() []string {
			tok := "Bearer " + as.Mint(nil)
			return []string{tok, tok}
		}, codes.InvalidArgument, "more than one Authorization header",
			wantChallenge(g, "invalid_request", "more than one Authorization header")),
		row("bearer in lower case", methodGet, func() []string { return []string{"bearer " + as.Mint(oauthtest.Claims{"sub": "alice"})} }, codes.OK, "alice jwt", ""),
		row("BEARER in upper case", methodGet, func() []string { return []string{"BEARER " + as.Mint(oauthtest.Claims{"sub": "alice"})} }, codes.OK, "alice jwt", ""),
		row("opaque, active", methodGet, func() []string { return bearer(as.MintOpaque(oauthtest.Claims{"sub": "bob"})) }, codes.OK, "bob opaque", ""),
		refused("opaque, revoked", methodGet, func() []string {
			tok := as.MintOpaque(nil)
			as.Revoke(tok)
			return bearer(tok)
		}, "token is not active"),
		{name: "introspection down", method: methodGet, code: codes.Unavailable, msg: "authorization server unavailable, retry later", retry: "5",
			auth: func() []string {
				as.SetFault(oauthtest.EndpointIntrospect, &oauthtest.Fault{Status: http.StatusBadGateway})
				t.Cleanup(func() { as.SetFault(oauthtest.EndpointIntrospect, nil) })
				return bearer(as.MintOpaque(nil))
			}},
	}
	for _, c := range cases {
		for _, kind := range []string{"unary", "stream"} {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				auth := c.auth()
				method := c.method
				before := rc.calls.Load()
				var o outcome
				if kind == "unary" {
					o = unary(t, conn, method, authMD(auth))
				} else {
					if method == methodGet {
						method = methodWatch
					} else {
						t.Skip("no stream of this method")
					}
					o = stream(t, conn, method, authMD(auth))
				}
				reached := rc.calls.Load() != before
				if c.code == codes.OK {
					if o.code != codes.OK || o.reply != c.msg || !reached {
						t.Fatalf("got %v %q (reply %q, reached %v), want OK %q", o.code, o.msg, o.reply, reached, c.msg)
					}
					if len(o.md.Get("www-authenticate")) != 0 {
						t.Errorf("www-authenticate on success: %q", o.md.Get("www-authenticate"))
					}
					return
				}
				if o.code != c.code || o.msg != c.msg {
					t.Errorf("got %v %q, want %v %q", o.code, o.msg, c.code, c.msg)
				}
				if reached {
					t.Error("the handler was reached")
				}
				if got := o.challenge(); got != c.chal {
					t.Errorf("www-authenticate\n got %q\nwant %q", got, c.chal)
				}
				if got := o.retryAfter(); got != c.retry {
					t.Errorf("retry-after %q, want %q", got, c.retry)
				}
				for _, a := range auth {
					_, tok, _ := strings.Cut(a, " ")
					if len(tok) > 8 && (strings.Contains(o.msg, tok) || strings.Contains(strings.Join(o.md.Get("www-authenticate"), ""), tok)) {
						t.Error("the refusal shows the token")
					}
				}
			})
		}
	}
}

// The handler sees the token's Principal: subject, scopes, client and the
// kind of token, in the unary handler's context and in the stream's.
func TestPrincipalReachesHandler(t *testing.T) {
	as, g := newGuard(t, nil)
	conn, rc := start(t, g, testOptions())
	tok := as.Mint(oauthtest.Claims{"sub": "alice", "client_id": "app", "scope": "orders:read " + scopeWrite})
	for _, method := range []string{methodCreate, methodWatch} {
		var o outcome
		if method == methodWatch {
			o = stream(t, conn, method, authMD(bearer(tok)))
		} else {
			o = unary(t, conn, method, authMD(bearer(tok)))
		}
		p := rc.last.Swap(nil)
		if o.code != codes.OK || p == nil {
			t.Fatalf("%s: %v %q", method, o.code, o.msg)
		}
		if p.Subject != "alice" || p.ClientID != "app" || !slices.Equal(p.Scopes, []string{"orders:read", scopeWrite}) || p.Kind != tokenguard.KindJWT || p.Issuer != as.Issuer {
			t.Errorf("%s: handler saw %+v", method, p)
		}
	}
}

// A public method is served without a token, and untouched: a bad token
// does not refuse it and no Principal is in its context. Its neighbours
// still need a token.
func TestPublicMethod(t *testing.T) {
	as, g := newGuard(t, nil)
	conn, _ := start(t, g, testOptions())
	for name, auth := range map[string][]string{
		"no token":      nil,
		"expired token": bearer(as.Mint(oauthtest.Claims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()})),
		"valid token":   bearer(as.Mint(oauthtest.Claims{"sub": "alice"})),
	} {
		if o := unary(t, conn, methodPing, authMD(auth)); o.code != codes.OK || o.reply != "-" {
			t.Errorf("%s: %v %q reply %q", name, o.code, o.msg, o.reply)
		}
	}
	if o := unary(t, conn, methodGet, nil); o.code != codes.Unauthenticated {
		t.Errorf("Get without a token: %v", o.code)
	}
}

// Require applies to every method that is not public; MethodRequirements
// adds to it and to Methods, and is asked with the full method name.
func TestRequireAndMethodRequirements(t *testing.T) {
	as, g := newGuard(t, nil)
	var (
		mu    sync.Mutex
		asked []string
	)
	opts := testOptions()
	opts.Require = []tokenguard.Requirement{tokenguard.AllScopes("orders:read")}
	opts.MethodRequirements = func(fullMethod string) []tokenguard.Requirement {
		mu.Lock()
		asked = append(asked, fullMethod)
		mu.Unlock()
		if fullMethod == methodWatch {
			return []tokenguard.Requirement{tokenguard.ClaimIs("tier", "gold")}
		}
		return nil
	}
	conn, _ := start(t, g, opts)
	read := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read"})
	write := as.Mint(oauthtest.Claims{"sub": "alice", "scope": scopeWrite})
	both := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read " + scopeWrite})
	gold := as.Mint(oauthtest.Claims{"sub": "alice", "scope": "orders:read", "tier": "gold"})
	scopeChal := func(scopes string) string {
		return wantChallenge(g, "insufficient_scope", "token lacks a required scope", `scope="`+scopes+`"`)
	}
	for _, c := range []struct {
		name, method, token string
		code                codes.Code
		chal                string
	}{
		{"Require met", methodGet, read, codes.OK, ""},
		{"Require not met", methodGet, write, codes.PermissionDenied, scopeChal("orders:read")},
		{"Require and Methods met", methodCreate, both, codes.OK, ""},
		{"Methods not met", methodCreate, read, codes.PermissionDenied, scopeChal(scopeWrite)},
		{"Require not met on a mapped method", methodCreate, write, codes.PermissionDenied, scopeChal("orders:read")},
		{"MethodRequirements not met", methodWatch, read, codes.PermissionDenied, ""},
		{"MethodRequirements met", methodWatch, gold, codes.OK, ""},
		{"public method, no token", methodPing, "", codes.OK, ""},
	} {
		var auth []string
		if c.token != "" {
			auth = bearer(c.token)
		}
		var o outcome
		if c.method == methodWatch {
			o = stream(t, conn, c.method, authMD(auth))
		} else {
			o = unary(t, conn, c.method, authMD(auth))
		}
		if o.code != c.code {
			t.Errorf("%s: %v %q, want %v", c.name, o.code, o.msg, c.code)
		}
		if c.chal != "" && o.challenge() != c.chal {
			t.Errorf("%s: www-authenticate\n got %q\nwant %q", c.name, o.challenge(), c.chal)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if c := len(asked); c != 7 {
		t.Errorf("MethodRequirements asked %d times, want 7 (never for the public method): %q", c, asked)
	}
	if !slices.Contains(asked, methodWatch) || slices.Contains(asked, methodPing) {
		t.Errorf("MethodRequirements asked for %q", asked)
	}
}

// An unregistered method served by an UnknownServiceHandler goes through
// the stream interceptor and needs a valid token: not being in any list
// opens nothing. The server handles it as a stream, so even a unary call
// gets the challenge in the trailer.
func TestUnknownServiceNeedsToken(t *testing.T) {
	as, g := newGuard(t, nil)
	conn, rc := start(t, g, testOptions(), grpc.UnknownServiceHandler(unknownService))
	if o := unary(t, conn, "/tgtest.Elsewhere/Anything", nil); o.code != codes.Unauthenticated || o.msg != "bearer token required" ||
		strings.Join(o.trail.Get("www-authenticate"), "\n") != wantChallenge(g, "", "") {
		t.Errorf("no token: %v %q %q", o.code, o.msg, o.trail.Get("www-authenticate"))
	}
	// Names close to a public one are not public.
	for _, m := range []string{"/tgtest.Orders/Ping2", "/tgtest.Orders/ping", "/TGTEST.Orders/Ping", "/tgtest.Orders.Ping", "/tgtest.Orders/Ping/x"} {
		if o := unary(t, conn, m, nil); o.code != codes.Unauthenticated && o.code != codes.Unimplemented {
			t.Errorf("%s without a token: %v %q", m, o.code, o.msg)
		}
	}
	if rc.calls.Load() != 0 {
		t.Errorf("%d calls reached a handler", rc.calls.Load())
	}
	tok := as.Mint(oauthtest.Claims{"sub": "alice"})
	if o := unary(t, conn, "/tgtest.Elsewhere/Anything", authMD(bearer(tok))); o.code != codes.OK || o.reply != "unknown alice" {
		t.Errorf("valid token: %v %q %q", o.code, o.msg, o.reply)
	}
}

// Metadata the client sends besides authorization goes to the Guard as
// headers, so a Config.TokenSources that reads a header works as over
// HTTP; and a token in two places at once is refused.
func TestOtherMetadataAsHeaders(t *testing.T) {
	as, g := newGuard(t, func(c *tokenguard.Config) {
		c.TokenSources = []tokenguard.TokenSource{func(r *http.Request) []string { return r.Header.Values("X-Api-Token") }}
	})
	conn, _ := start(t, g, testOptions())
	tok := as.Mint(oauthtest.Claims{"sub": "alice"})
	if o := unary(t, conn, methodGet, metadata.Pairs("x-api-token", tok)); o.code != codes.OK || o.reply != "alice jwt" {
		t.Errorf("token in x-api-token: %v %q", o.code, o.msg)
	}
	o := unary(t, conn, methodGet, authMD(bearer(tok), "x-api-token", tok))
	if o.code != codes.InvalidArgument {
		t.Errorf("token in two places: %v %q", o.code, o.msg)
	}
}

// Refusals the Guard chooses through ValidateClaims keep their status,
// mapped: 500 to Internal (no challenge), 429 to ResourceExhausted, 404 to
// NotFound; a plain error is 401 invalid_token.
func TestValidateClaimsStatuses(t *testing.T) {
	as, g := newGuard(t, func(c *tokenguard.Config) {
		c.ValidateClaims = func(_ context.Context, p *tokenguard.Principal) error {
			switch p.Subject {
			case "internal":
				return &tokenguard.Error{Status: 500, Description: "internal error", Reason: tokenguard.ReasonInternal}
			case "busy":
				return &tokenguard.Error{Status: 429, Description: "slow down", Reason: tokenguard.ReasonPolicyRejected}
			case "hidden":
				return &tokenguard.Error{Status: 404, Description: "no such thing", Reason: tokenguard.ReasonPolicyRejected}
			case "teapot":
				return &tokenguard.Error{Status: 418, Description: "a teapot", Reason: tokenguard.ReasonPolicyRejected}
			case "plain":
				return errPlain
			}
			return nil
		}
	})
	conn, _ := start(t, g, testOptions())
	for sub, want := range map[string]struct {
		code codes.Code
		msg  string
	}{
		"internal": {codes.Internal, "internal error"},
		"busy":     {codes.ResourceExhausted, "slow down"},
		"hidden":   {codes.NotFound, "no such thing"},
		"teapot":   {codes.PermissionDenied, "a teapot"},
		"plain":    {codes.Unauthenticated, "token rejected by policy"},
		"fine":     {codes.OK, ""},
	} {
		o := unary(t, conn, methodGet, authMD(bearer(as.Mint(oauthtest.Claims{"sub": sub}))))
		if o.code != want.code || (want.code != codes.OK && o.msg != want.msg) {
			t.Errorf("%s: %v %q, want %v %q", sub, o.code, o.msg, want.code, want.msg)
		}
		if sub == "internal" && len(o.md.Get("www-authenticate")) != 0 {
			t.Errorf("internal: a challenge %q", o.md.Get("www-authenticate"))
		}
	}
}

var errPlain = errors.New("a policy of the test")

// unknownService answers any method it is given with "unknown" and the
// subject in its stream's context.
func unknownService(_ any, ss grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	sub := "-"
	if p, ok := tokenguard.PrincipalFrom(ss.Context()); ok {
		sub = p.Subject
	}
	return ss.SendMsg(wrapperspb.String("unknown " + sub))
}
