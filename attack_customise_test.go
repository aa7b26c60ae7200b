package tokenguard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Attacks on the customisation points (ErrorHandler, TokenSources,
// Optional, ClaimEquals, static keys, RetryStartup, route scopes): each
// test is written from the attacker's side and failed before its fix.

// A token the ValidateClaims hook refuses with a 401 of its own making
// (an *Error without an RFC 6750 code, or an error wrapping ErrNoToken,
// as a helper of the team's might return) was taken by Optional for "no
// token at all" and let through as anonymous: errors.Is(err, ErrNoToken)
// matched. A request that carried a token is never "no token".
func TestAttackOptionalDoesNotPassAHookRefusalAsAnonymous(t *testing.T) {
	as := shared(t)
	for name, refusal := range map[string]error{
		"*Error without a code":     &tokenguard.Error{Status: http.StatusUnauthorized, Description: "account suspended"},
		"wraps ErrNoToken":          fmt.Errorf("no session for this token: %w", tokenguard.ErrNoToken),
		"wraps a no-token *Error":   fmt.Errorf("second guard: %w", &tokenguard.Error{Status: 401, Reason: tokenguard.ReasonTokenMissing}),
		"*Error with Reason":        &tokenguard.Error{Status: 401, Description: "suspended", Reason: tokenguard.ReasonTokenMissing},
		"*Error wraps ErrNoToken":   &tokenguard.Error{Status: 401, Code: tokenguard.CodeInvalidToken, Description: "suspended", Err: tokenguard.ErrNoToken},
		"*Error 403 wraps no-token": &tokenguard.Error{Status: 403, Code: tokenguard.CodeInsufficientScope, Description: "no", Err: tokenguard.ErrNoToken},
	} {
		t.Run(name, func(t *testing.T) {
			g := newGuard(t, as, tokenguard.Config{ValidateClaims: func(_ context.Context, p *tokenguard.Principal) error {
				if p.Subject == "mallory" {
					return refusal
				}
				return nil
			}})
			var seen reached
			w := call(g.Optional(seen.handler()), "Bearer "+as.Mint(oauthtest.Claims{"sub": "mallory"}))
			if seen.called || w.Code < 400 {
				t.Fatalf("a refused token passed Optional as anonymous: %d, called=%v", w.Code, seen.called)
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Authorization", "Bearer "+as.Mint(oauthtest.Claims{"sub": "mallory"}))
			_, err := g.Authenticate(r)
			if errors.Is(err, tokenguard.ErrNoToken) || errors.Is(err, tokenguard.ReasonTokenMissing) {
				t.Errorf("a refused token reads as no token: %v", err)
			}
			if c := w.Header().Get("WWW-Authenticate"); w.Code == 401 && !strings.Contains(c, `error="invalid_token"`) {
				t.Errorf("the 401 of a refused token has no invalid_token: %q", c)
			}
			// A genuine anonymous request still passes.
			seen = reached{}
			if w := call(g.Optional(seen.handler()), ""); w.Code != 200 || !seen.called || seen.principal != nil {
				t.Errorf("anonymous: %d", w.Code)
			}
		})
	}
}

// An authorization server that puts the token in the answer's scope (a
// server echoing what it was sent, or a hostile one) got it into the
// debug record of the 403, which names the token's scopes.
func TestAttackScopesEchoingTheTokenStayOutOfThe403Log(t *testing.T) {
	ts := newRecordingAS(t, false)
	ts.setAnswer(func(_, token string) map[string]any {
		return map[string]any{"active": true, "aud": "api://x", "scope": "read " + token + " x" + token[3:30]}
	})
	var logs logBuffer
	g := newGuardAt(t, tokenguard.Config{Issuer: ts.issuer(""), Audience: "api://x", Logger: logs.logger(),
		Introspection: tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"}})
	const secret = "secret-opaque-token-0123456789abcdefghij"
	for range 2 { // the flight, then the cached answer
		if w := call(g.RequireScopes("admin")(okHandler), "Bearer "+secret); w.Code != 403 {
			t.Fatalf("%d %s", w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	out := logs.String()
	if !strings.Contains(out, "insufficient_scope") {
		t.Fatalf("no 403 record:\n%s", out)
	}
	if strings.Contains(out, secret[:16]) || strings.Contains(out, secret[10:26]) {
		t.Errorf("the log holds the token (or part of it):\n%s", out)
	}
}

// A 403's record names at most a bounded text per scope: one scope of a
// megabyte in an introspection answer is not a megabyte per request in
// the log.
func TestAttackHugeScopeDoesNotBloatThe403Log(t *testing.T) {
	ts := newRecordingAS(t, false)
	huge := strings.Repeat("s", 48<<10)
	ts.setAnswer(func(_, token string) map[string]any {
		return map[string]any{"active": true, "aud": "api://x", "scope": "read " + huge}
	})
	var logs logBuffer
	g := newGuardAt(t, tokenguard.Config{Issuer: ts.issuer(""), Audience: "api://x", Logger: logs.logger(),
		Introspection: tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "s"}})
	if w := call(g.RequireScopes("admin")(okHandler), "Bearer opaque-token-0123456789abcdef"); w.Code != 403 {
		t.Fatalf("%d", w.Code)
	}
	if n := len(logs.String()); n > 8<<10 {
		t.Errorf("a 403 record of %d bytes", n)
	}
}

// ClaimEquals compared numbers as big.Rat: a claim holding 1e1000000
// made math/big build a 3-million-digit integer (tens of milliseconds and
// megabytes each), and a token's array of them kept a core busy for
// seconds on every request, the verified-token cache notwithstanding.
func TestAttackClaimEqualsHugeExponentIsCheap(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	arr := "[" + strings.Repeat("1e1000000,", 300) + "1e-1000000]"
	token := as.Mint(oauthtest.Claims{"level": json.RawMessage(arr), "one": json.RawMessage("1e1000000")})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	_, err := g.Check(r, tokenguard.ClaimEquals("level", 2))
	if err == nil {
		t.Fatal("ClaimEquals matched")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("one ClaimEquals over the claim took %s", d)
	}
	// Exact still: 1e1000000 is 10e999999, and not 1.
	if _, err := g.Check(r, tokenguard.ClaimEquals("one", json.Number("10e999999"))); err != nil {
		t.Errorf("1e1000000 != 10e999999: %v", err)
	}
	if _, err := g.Check(r, tokenguard.ClaimEquals("one", 1)); err == nil {
		t.Error("1e1000000 == 1")
	}
}

// An ErrorHandler that writes a body but no status (or nothing, for a
// reason it does not handle) answered the refusal with 200 OK: a proxy
// or an auth_request front that goes by the status let the request
// through. The refusal's status is the default.
func TestAttackErrorHandlerWithoutStatusStillRefuses(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{ErrorHandler: func(w http.ResponseWriter, r *http.Request, e *tokenguard.Error) {
		switch e.Reason {
		case tokenguard.ReasonTokenExpired:
			_, _ = io.WriteString(w, `{"message":"please sign in again"}`) // no WriteHeader
		case tokenguard.ReasonTokenMissing:
			w.WriteHeader(http.StatusFound) // a deliberate choice is kept
		case tokenguard.ReasonSignatureInvalid:
			_ = http.NewResponseController(w).Flush() // a flush sends the status
		}
		// anything else: nothing written
	}})
	h := g.Handler(okHandler)
	expired := as.Mint(oauthtest.Claims{"exp": time.Now().Add(-time.Hour)})
	if w := call(h, "Bearer "+expired); w.Code != 401 || !strings.Contains(w.Body.String(), "sign in") {
		t.Errorf("body without status: %d %q", w.Code, w.Body)
	}
	if w := call(h, "Bearer "+tamperSignature(as.Mint(nil))); w.Code != 401 || !w.Flushed || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("flushed: %d", w.Code)
	}
	if w := call(h, "Bearer a b"); w.Code != 400 || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("nothing written: %d", w.Code)
	}
	if w := call(h, ""); w.Code != http.StatusFound {
		t.Errorf("explicit status: %d", w.Code)
	}
	// Through a real server too (the recorder defaults to 200 as well).
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+tamperSignature(as.Mint(nil)))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("over HTTP: %d", resp.StatusCode)
	}
}

// ErrorHandler's writer still reaches the underlying one
// (http.ResponseController), so a handler may flush or set deadlines.
func TestErrorHandlerWriterUnwraps(t *testing.T) {
	as := shared(t)
	var ctlErr error
	g := newGuard(t, as, tokenguard.Config{ErrorHandler: func(w http.ResponseWriter, r *http.Request, e *tokenguard.Error) {
		w.WriteHeader(e.Status)
		ctlErr = http.NewResponseController(w).Flush()
	}})
	if w := call(g.Handler(okHandler), ""); w.Code != 401 || ctlErr != nil || !w.Flushed {
		t.Errorf("%d flush %v (flushed %v)", w.Code, ctlErr, w.Flushed)
	}
	// A handler that asserts http.Flusher, before any status.
	g2 := newGuard(t, as, tokenguard.Config{ErrorHandler: func(w http.ResponseWriter, r *http.Request, e *tokenguard.Error) {
		w.(http.Flusher).Flush()
	}})
	if w := call(g2.Handler(okHandler), ""); w.Code != 401 || !w.Flushed {
		t.Errorf("http.Flusher: %d (flushed %v)", w.Code, w.Flushed)
	}
}

// Held: Optional with token sources. A bad token in a cookie or a
// subprotocol is refused, two places are 400, and none is anonymous.
func TestAttackOptionalWithTokenSources(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{
		TokenSources:    []tokenguard.TokenSource{tokenguard.CookieToken("at"), tokenguard.WebSocketProtocolToken("access_token."), nil},
		AllowQueryToken: true,
	})
	var seen reached
	h := g.Optional(seen.handler())
	good := as.Mint(nil)
	for _, c := range []struct {
		what   string
		mod    func(r *http.Request)
		status int
	}{
		{"forged cookie", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "at", Value: tamperSignature(good)}) }, 401},
		{"forged subprotocol", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Protocol", "access_token."+tamperSignature(good)) }, 401},
		{"bad syntax cookie", func(r *http.Request) { r.Header.Set("Cookie", `at="a b"`) }, 400},
		{"empty subprotocol token", func(r *http.Request) { r.Header.Set("Sec-WebSocket-Protocol", "chat, access_token.") }, 400},
		{"subprotocol and query", func(r *http.Request) {
			r.Header.Set("Sec-WebSocket-Protocol", "access_token."+good)
			r.URL.RawQuery = "access_token=" + good
		}, 400},
		{"cookie and Bearer", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "at", Value: good})
			r.Header.Set("Authorization", "Bearer "+good)
		}, 400},
		{"two subprotocols in one header", func(r *http.Request) {
			r.Header.Set("Sec-WebSocket-Protocol", "access_token."+good+", access_token."+good)
		}, 400},
		{"too large", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "at", Value: strings.Repeat("a", 17<<10)}) }, 401},
		{"cookie, Basic header", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "at", Value: tamperSignature(good)})
			r.Header.Set("Authorization", "Basic YTpi")
		}, 401},
	} {
		seen = reached{}
		r := httptest.NewRequest("GET", "/", nil)
		c.mod(r)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.status || seen.called {
			t.Errorf("%s: %d called=%v, want %d", c.what, w.Code, seen.called, c.status)
		}
	}
}

// Held: before its start, the RetryStartup Guard lets nothing through,
// whatever the route and the request, and honours no Principal; after it,
// a Principal of another Guard is not honoured either.
func TestAttackRetryStartupFacadeLetsNothingThrough(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	down := &oauthtest.Fault{Status: 503}
	as.SetFault(oauthtest.EndpointServerMetadata, down)
	as.SetFault(oauthtest.EndpointOpenIDConfiguration, down)
	g, err := tokenguard.New(context.Background(), tokenguard.Config{Issuer: as.Issuer, Resource: as.Resource(), InsecureAllowHTTP: true, RetryStartup: true})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	other := newGuard(t, as, tokenguard.Config{Issuer: as.Issuer, JWKSURL: as.JWKSURL(), Audience: as.Resource()})
	token := as.Mint(oauthtest.Claims{"scope": "admin"})
	// A genuine Principal, of the other Guard.
	r0 := httptest.NewRequest("GET", "/", nil)
	r0.Header.Set("Authorization", "Bearer "+token)
	p, err := other.Authenticate(r0)
	if err != nil {
		t.Fatal(err)
	}
	var seen reached
	for name, h := range map[string]http.Handler{
		"Handler":  g.Handler(seen.handler()),
		"Optional": g.Optional(seen.handler()),
		"Require":  g.Require(tokenguard.Satisfies("anything", func(*tokenguard.Principal) bool { return true }))(seen.handler()),
		"Scopes":   g.RequireScopes("admin")(seen.handler()),
	} {
		for _, auth := range []string{"", "Bearer " + token, "Basic YTpi", "Bearer a b"} {
			seen = reached{}
			r := httptest.NewRequest("GET", "/", nil)
			if auth != "" {
				r.Header.Set("Authorization", auth)
			}
			r = r.WithContext(tokenguard.WithPrincipal(r.Context(), p))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if seen.called || w.Code != 503 {
				t.Errorf("%s %q before start: %d called=%v", name, auth, w.Code, seen.called)
			}
		}
	}
	if _, err := g.Check(r0.WithContext(tokenguard.WithPrincipal(context.Background(), p))); !errors.Is(err, tokenguard.ErrUnavailable) {
		t.Errorf("Check before start: %v", err)
	}
	as.SetFault(oauthtest.EndpointServerMetadata, nil)
	as.SetFault(oauthtest.EndpointOpenIDConfiguration, nil)
	deadline := time.Now().Add(10 * time.Second)
	for g.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal(g.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// After: the other Guard's Principal is not honoured (the request's
	// own token, a forged one, is judged).
	seen = reached{}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+tamperSignature(token))
	r = r.WithContext(tokenguard.WithPrincipal(r.Context(), p))
	w := httptest.NewRecorder()
	g.RequireScopes("admin")(seen.handler()).ServeHTTP(w, r)
	if seen.called || w.Code != 401 {
		t.Errorf("after start, another Guard's Principal: %d called=%v", w.Code, seen.called)
	}
}

// Held: Close during the retries, and after a start, leaves no goroutine
// behind (the key-set refresh loops of the started Guard included); run
// with -race, concurrent requests during the start race with nothing.
func TestAttackRetryStartupLeavesNoGoroutine(t *testing.T) {
	as := newAS(t, oauthtest.Options{})
	for i := range 6 {
		as.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{Status: 503})
		g, err := tokenguard.New(context.Background(), tokenguard.Config{Issuer: as.Issuer, Resource: as.Resource(), InsecureAllowHTTP: true, RetryStartup: true})
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		h := g.RequireScopes("a")(okHandler)
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					call(h, "Bearer "+as.Mint(nil))
					_ = g.Ready()
					g.MetadataHandler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
					g.Require(tokenguard.AnyScope("b"))
				}
			})
		}
		if i%2 == 1 {
			as.SetFault(oauthtest.EndpointJWKS, nil)
			deadline := time.Now().Add(10 * time.Second)
			for g.Ready() != nil && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if g.Ready() != nil {
				t.Fatal(g.Ready())
			}
		} else {
			time.Sleep(time.Duration(i) * 100 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		g.Close()
	}
	as.SetFault(oauthtest.EndpointJWKS, nil)
	// The Guard's own goroutines: the start-up loop and key-set refreshes.
	ours := func() string {
		buf := make([]byte, 4<<20)
		var out []string
		for _, st := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(st, "tokenguard.(*startup)") || strings.Contains(st, "tokenguard/jwks.(*Set)") {
				out = append(out, st)
			}
		}
		return strings.Join(out, "\n\n")
	}
	deadline := time.Now().Add(5 * time.Second)
	for ours() != "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := ours(); left != "" {
		t.Errorf("goroutines left after Close:\n%s", left)
	}
}

// ClaimEquals compares numbers by decimal value, floats as written, and
// takes only JSON numbers; an exponent of thousands of digits costs
// nothing either.
func TestClaimEqualsDecimalValues(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	hugeExp := "1e" + strings.Repeat("9", 8000)
	token := as.Mint(oauthtest.Claims{
		"one": json.RawMessage("1"), "tenth": json.RawMessage("0.1"), "zero": json.RawMessage("-0.0e5"),
		"cents": json.RawMessage("100e-2"), "huge": json.RawMessage(hugeExp), "e21": json.RawMessage("1000000000000000000000"),
	})
	for _, c := range []struct {
		name  string
		value any
		ok    bool
	}{
		{"one", json.Number("1.000"), true},
		{"one", json.Number("0.1e1"), true},
		{"one", json.Number("1E+0"), true},
		{"one", -1, false},
		{"cents", 1, true},
		{"cents", 1.01, false},
		{"tenth", 0.1, true},
		{"tenth", float32(0.1), true},
		{"tenth", json.Number("1e-1"), true},
		{"tenth", 0.10000000000000002, false},
		{"zero", 0, true},
		{"zero", -0.0, true},
		{"huge", json.Number("10e" + strings.Repeat("9", 7999) + "8"), true},
		{"huge", json.Number(hugeExp[:len(hugeExp)-1] + "8"), false},
		{"e21", 1e21, true},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		_, err := g.Check(r, tokenguard.ClaimEquals(c.name, c.value))
		if (err == nil) != c.ok {
			t.Errorf("ClaimEquals(%q, %v): %v, want ok=%v", c.name, c.value, err, c.ok)
		}
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("ClaimEquals(%q, ...) took %s", c.name, d)
		}
	}
	for _, bad := range []json.Number{"0x10", "1/3", "+1", ".5", "01", "1.", "1e", "--1", "1e+", "", "NaN"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("ClaimEquals with json.Number(%q) did not panic", bad)
				}
			}()
			tokenguard.ClaimEquals("x", bad)
		}()
	}
}

// A typed nil *Error from the hook, bare or wrapped, with a Logger: the
// record is written, nothing panics, and the token is refused.
func TestValidateClaimsTypedNilWithALogger(t *testing.T) {
	as := shared(t)
	for _, refusal := range []error{(*tokenguard.Error)(nil), fmt.Errorf("policy: %w", (*tokenguard.Error)(nil))} {
		var logs logBuffer
		g := newGuard(t, as, tokenguard.Config{Logger: logs.logger(), ValidateClaims: func(context.Context, *tokenguard.Principal) error { return refusal }})
		var seen reached
		if w := call(g.Optional(seen.handler()), "Bearer "+as.Mint(nil)); w.Code != 401 || seen.called {
			t.Errorf("%v: %d called=%v", refusal, w.Code, seen.called)
		}
		if !strings.Contains(logs.String(), "token rejected by policy") {
			t.Errorf("log: %s", logs.String())
		}
	}
}
