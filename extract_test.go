package tokenguard_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
)

func TestExtraction(t *testing.T) {
	as := shared(t)
	tok := as.Mint(nil)
	plain := newGuard(t, as, tokenguard.Config{})
	all := newGuard(t, as, tokenguard.Config{AllowFormToken: true, AllowQueryToken: true})

	type request struct {
		auth   []string
		query  string
		form   string
		method string
	}
	for _, tc := range []struct {
		name   string
		g      *tokenguard.Guard
		req    request
		status int
		code   string
		desc   string
	}{
		{"header", plain, request{auth: []string{"Bearer " + tok}}, 200, "", ""},
		{"lower-case scheme", plain, request{auth: []string{"bearer " + tok}}, 200, "", ""},
		{"upper-case scheme", plain, request{auth: []string{"BEARER " + tok}}, 200, "", ""},
		{"no token", plain, request{}, 401, "", ""},
		{"other scheme", plain, request{auth: []string{"Basic dXNlcjpwYXNz"}}, 401, "", ""},
		{"scheme only", plain, request{auth: []string{"Bearer"}}, 400, "invalid_request", "empty bearer token"},
		{"scheme and space", plain, request{auth: []string{"Bearer "}}, 400, "invalid_request", "empty bearer token"},
		{"two Authorization headers", plain, request{auth: []string{"Bearer " + tok, "Bearer " + tok}}, 400, "invalid_request", "more than one Authorization header"},
		{"characters outside b64token", plain, request{auth: []string{"Bearer a\"b"}}, 400, "invalid_request", "token has characters a bearer token cannot have"},
		{"space inside the token", plain, request{auth: []string{"Bearer abc def"}}, 400, "invalid_request", "token has characters a bearer token cannot have"},
		{"query ignored unless enabled", plain, request{query: tok}, 401, "", ""},
		{"form ignored unless enabled", plain, request{form: tok, method: "POST"}, 401, "", ""},
		{"query when enabled", all, request{query: tok}, 200, "", ""},
		{"form when enabled", all, request{form: tok, method: "POST"}, 200, "", ""},
		{"form on GET is not a method", all, request{form: tok, method: "GET"}, 401, "", ""},
		{"header and query", all, request{auth: []string{"Bearer " + tok}, query: tok}, 400, "invalid_request", "token sent by more than one method"},
		// The body is not read when the header has a token (it stays the
		// handler's); the header token decides.
		{"header and form", all, request{auth: []string{"Bearer " + tok}, form: "ignored", method: "POST"}, 200, "", ""},
		{"query repeated", all, request{query: tok + "&access_token=" + tok}, 400, "invalid_request", "access_token repeated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.req.method
			if method == "" {
				method = "GET"
			}
			target := "/orders"
			if tc.req.query != "" {
				target += "?access_token=" + tc.req.query
			}
			var r *http.Request
			if tc.req.form != "" {
				r = httptest.NewRequest(method, target, strings.NewReader(url.Values{"access_token": {tc.req.form}}.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				r = httptest.NewRequest(method, target, nil)
			}
			for _, a := range tc.req.auth {
				r.Header.Add("Authorization", a)
			}
			var rc reached
			w := httptest.NewRecorder()
			tc.g.Handler(rc.handler()).ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.status, w.Header().Get("WWW-Authenticate"))
			}
			if tc.status == 200 {
				if !rc.called || rc.principal == nil {
					t.Error("handler not reached with a principal")
				}
				return
			}
			if rc.called {
				t.Error("handler reached")
			}
			if got, want := w.Header().Get("WWW-Authenticate"), wantChallenge(tc.g, tc.code, tc.desc); got != want {
				t.Errorf("WWW-Authenticate\n got %s\nwant %s", got, want)
			}
		})
	}
}

// isB64Token against RFC 6750 §2.1, byte by byte:
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func TestAttackB64TokenEveryByte(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
	bad := wantChallenge(g, "invalid_request", "token has characters a bearer token cannot have")
	for c := range 256 {
		b := string([]byte{byte(c)})
		ok := strings.Contains(chars, b)
		for _, tc := range []struct {
			token string
			valid bool
		}{
			{"x" + b, ok || b == "="},
			{b + "x", ok || b == " "}, // 1*SP before the token
			{"x" + b + "=", ok || b == "="},
			{"x=" + b, b == "="},
		} {
			w := call(h, "Bearer "+tc.token)
			if tc.valid {
				// Syntactically a bearer token: it reaches validation.
				if w.Code != 401 || strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_request") {
					t.Errorf("token %q: %d %s, want 401 invalid_token", tc.token, w.Code, w.Header().Get("WWW-Authenticate"))
				}
				continue
			}
			if w.Code != 400 || w.Header().Get("WWW-Authenticate") != bad {
				t.Errorf("token %q (%x): %d %s, want 400 %s", tc.token, tc.token, w.Code, w.Header().Get("WWW-Authenticate"), bad)
			}
		}
	}
}

// The same over a long token, with the bad byte at each offset of an
// eight-byte group and at the tail, where isB64Token reads eight at a time.
func TestAttackB64TokenLongEveryOffset(t *testing.T) {
	as := shared(t)
	g := newGuard(t, as, tokenguard.Config{})
	h := g.Handler(http.NotFoundHandler())
	bad := wantChallenge(g, "invalid_request", "token has characters a bearer token cannot have")
	long := strings.Repeat("abcdefgh", 8) + "xyz" // 67 bytes: eight groups and a tail
	for _, c := range []byte{'!', '"', ',', ';', '=', '\\', 0x7f, 0x80, 0xff, '\t'} {
		for i := 0; i < len(long); i++ {
			if c == '=' && i == len(long)-1 {
				continue // padding at the end is b64token
			}
			tok := long[:i] + string([]byte{c}) + long[i+1:]
			w := call(h, "Bearer "+tok)
			if w.Code != 400 || w.Header().Get("WWW-Authenticate") != bad {
				t.Errorf("byte %#x at %d: %d %s", c, i, w.Code, w.Header().Get("WWW-Authenticate"))
			}
		}
	}
	// Padding only at the end, after a long run.
	for _, tok := range []string{long + "==", long + "="} {
		if w := call(h, "Bearer "+tok); w.Code != 401 || strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_request") {
			t.Errorf("%q: %d %s", tok, w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
}
