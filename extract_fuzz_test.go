package tokenguard_test

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// bearerChallengeRE is a Bearer challenge as RFC 9110 §11 and RFC 6750 §3
// allow it, in printable ASCII only: auth-params name="quoted-string"
// separated by ", ".
var bearerChallengeRE = regexp.MustCompile(`^Bearer [a-z_]+="(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"(?:, [a-z_]+="(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*")*$`)

// Placeholders in FuzzAuthenticate's inputs, replaced by tokens the guard
// accepts (minted when the fuzz process starts, so they cannot be seeds).
const (
	jwtPlaceholder    = "{jwt}"
	opaquePlaceholder = "{opaque}"
)

// b64TokenRE is RFC 6750 §2.1 b64token.
var b64TokenRE = regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)

// FuzzAuthenticate sends arbitrary requests (method, Authorization header
// lines, Content-Type, body, query) to Authenticate on a guard that takes
// tokens from the header, a form body and the query, verifies JWTs and
// introspects opaque tokens. Authenticate never panics and returns a
// principal or an *Error, never both; an error is 400 invalid_request, 401
// (no code, or invalid_token) or 503, and WriteError answers it with that
// status, a JSON body naming the code, and for 400/401 exactly one
// WWW-Authenticate line that is a well-formed Bearer challenge (the one the
// guard's configuration and the error's code and description call for),
// for 503 a Retry-After of whole seconds. Where the request is simple
// enough to judge independently (no form body read), RFC 6750 §2 decides:
// two Authorization headers, a token in two places or twice, an empty
// bearer token, or a token that is not a b64token is 400; no token is 401
// without a code; a valid token found in exactly one place is accepted,
// and any other b64token is 401 invalid_token.
func FuzzAuthenticate(f *testing.F) {
	as := newAS(f, oauthtest.Options{Algorithms: []string{"ES256"}})
	as.RegisterClient(rsID, rsSecret)
	g := newGuard(f, as, tokenguard.Config{
		AllowFormToken:  true,
		AllowQueryToken: true,
		Introspection:   tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
	})
	jwtTok := as.Mint(oauthtest.Claims{"scope": "a b"})
	opaqueTok := as.MintOpaque(oauthtest.Claims{"scope": "a"})
	valid := map[string]bool{jwtTok: true, opaqueTok: true}
	expand := func(s string) string {
		return strings.NewReplacer(jwtPlaceholder, jwtTok, opaquePlaceholder, opaqueTok).Replace(s)
	}

	const form = "application/x-www-form-urlencoded"
	for _, s := range []struct{ method, auth, ctype, body, query string }{
		{"GET", "Bearer {jwt}", "", "", ""},
		{"GET", "bearer   {opaque}", "", "", ""},
		{"GET", "BEARER {jwt}", "", "", "access_token={opaque}"},
		{"GET", "Bearer {jwt}\nBearer {jwt}", "", "", ""},
		{"GET", "Bearer ", "", "", ""},
		{"GET", "Bearer", "", "", ""},
		{"GET", "Basic dXNlcjpwYXNz", "", "", "access_token={jwt}"},
		{"GET", "", "", "", "access_token={jwt}&access_token={jwt}"},
		{"GET", "", "", "", "access_token=%zz&x=1"},
		{"GET", "", "", "", "access_token={jwt}%00"},
		{"GET", "Bearer {jwt}x", "", "", ""},
		{"GET", "Bearer not a token", "", "", ""},
		{"GET", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "", "", ""},
		{"GET", "Bearer \x00\r\n\"\\", "", "", ""},
		{"POST", "", form, "access_token={opaque}", ""},
		{"POST", "", form + "; charset=utf-8", "access_token={jwt}&access_token=x", ""},
		{"POST", "", form, "access_token={jwt}", "access_token={jwt}"},
		{"POST", "Bearer {jwt}", form, "access_token={jwt}", ""},
		{"PUT", "", "multipart/form-data; boundary=x", "--x--", ""},
		{"POST", "", form, "access_token=%", "a=;b"},
		{"DELETE", "", form, "access_token={jwt}", ""},
		{"GET", "", "", "", ""},
	} {
		f.Add(s.method, s.auth, s.ctype, s.body, s.query)
	}

	f.Fuzz(func(t *testing.T, method, auth, ctype, body, query string) {
		auth, body, query = expand(auth), expand(body), expand(query)
		r := httptest.NewRequest(http.MethodGet, "/orders", strings.NewReader(body))
		if method != "" {
			r.Method = method
		}
		r.URL.RawQuery = query
		var authLines []string
		if auth != "" {
			authLines = strings.Split(auth, "\n")
			r.Header["Authorization"] = authLines
		}
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}

		p, err := g.Authenticate(r)
		if (p == nil) == (err == nil) {
			t.Fatalf("Authenticate = %v, %v: want a principal or an error", p, err)
		}
		var e *tokenguard.Error
		if err != nil {
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *tokenguard.Error", err, err)
			}
			checkAnswer(t, g, r, e)
		}

		// Judge the request independently where that needs no form body.
		mt, _, mtErr := mime.ParseMediaType(ctype)
		formRead := r.Method != http.MethodGet && mt == form
		var headerToken string
		headerFound := false
		if len(authLines) == 1 {
			if scheme, rest, _ := strings.Cut(authLines[0], " "); strings.EqualFold(scheme, "Bearer") {
				headerToken, headerFound = strings.TrimLeft(rest, " "), true
			}
		}
		q, _ := url.ParseQuery(query)
		queryTokens := q["access_token"]
		var want string // "ok", "400", "401", "invalid_token" or "" (not judged)
		switch {
		case len(authLines) > 1:
			want = "400"
		case headerFound && headerToken == "":
			want = "400"
		case len(queryTokens) > 1:
			want = "400"
		case headerFound && len(queryTokens) == 1:
			want = "400"
		case formRead && !headerFound:
			// The form may hold a token too; judged only in the simplest case.
			if body, err := url.ParseQuery(body); err == nil && query == "" && r.Method == http.MethodPost && len(body) < 1<<10 &&
				mt == form && mtErr == nil && len(body["access_token"]) == 1 && valid[body["access_token"][0]] {
				// (A Content-Type with an invalid parameter is a malformed
				// request: 400, which this model does not judge.)
				want = "ok"
			}
		default:
			var tok string
			switch {
			case headerFound:
				tok = headerToken
			case len(queryTokens) == 1:
				tok = queryTokens[0]
			default:
				want = "401"
			}
			switch {
			case want != "":
			case valid[tok]:
				want = "ok"
			case len(tok) > 64<<10:
				want = "invalid_token"
			case !b64TokenRE.MatchString(tok):
				want = "400"
			default:
				want = "invalid_token"
			}
		}
		switch want {
		case "":
		case "ok":
			if err != nil {
				t.Fatalf("valid token in one place (auth %q, query %q, body %q) refused: %v", auth, query, body, err)
			}
			if p.Subject != "user-1" {
				t.Fatalf("principal subject %q", p.Subject)
			}
		case "400":
			if e == nil || e.Status != 400 || e.Code != tokenguard.CodeInvalidRequest {
				t.Fatalf("auth %q, query %q: want 400 invalid_request, got %v, %v", auth, query, p, err)
			}
		case "401":
			if e == nil || e.Status != 401 || e.Code != "" {
				t.Fatalf("auth %q, query %q: no token, want 401 without a code, got %v, %v", auth, query, p, err)
			}
		case "invalid_token":
			if e == nil || e.Status != 401 || e.Code != tokenguard.CodeInvalidToken {
				t.Fatalf("auth %q, query %q: want 401 invalid_token, got %v, %v", auth, query, p, err)
			}
		}
	})
}

// checkAnswer checks what Authenticate's error is, and what WriteError
// answers for it.
func checkAnswer(t *testing.T, g *tokenguard.Guard, r *http.Request, e *tokenguard.Error) {
	t.Helper()
	sentinels := 0
	for _, s := range []error{tokenguard.ErrNoToken, tokenguard.ErrInvalidRequest, tokenguard.ErrInvalidToken, tokenguard.ErrInsufficientScope, tokenguard.ErrUnavailable} {
		if errors.Is(e, s) {
			sentinels++
		}
	}
	if sentinels != 1 {
		t.Fatalf("error %v matches %d sentinels, want 1", e, sentinels)
	}
	switch {
	case e.Status == 400 && e.Code == tokenguard.CodeInvalidRequest:
	case e.Status == 401 && (e.Code == "" || e.Code == tokenguard.CodeInvalidToken):
	case e.Status == 503 && e.Code == "":
	default:
		t.Fatalf("error %v: status %d code %q, want 400 invalid_request, 401 or 503", e, e.Status, e.Code)
	}
	w := httptest.NewRecorder()
	g.WriteError(w, r, e)
	res := w.Result()
	if res.StatusCode != e.Status {
		t.Fatalf("WriteError answered %d for %v", res.StatusCode, e)
	}
	var answer struct {
		Error string `json:"error"`
	}
	if b, _ := io.ReadAll(res.Body); json.Unmarshal(b, &answer) != nil {
		t.Fatalf("WriteError body %q is not JSON", b)
	}
	challenges := res.Header.Values("WWW-Authenticate")
	if e.Status == 503 {
		if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || secs < 1 {
			t.Fatalf("503 with Retry-After %q", res.Header.Get("Retry-After"))
		}
		if len(challenges) != 0 || answer.Error != "temporarily_unavailable" {
			t.Fatalf("503 with challenges %q and error %q", challenges, answer.Error)
		}
		return
	}
	if len(challenges) != 1 || !bearerChallengeRE.MatchString(challenges[0]) {
		t.Fatalf("%d answered with WWW-Authenticate %q: want one well-formed Bearer challenge", e.Status, challenges)
	}
	if want := wantChallenge(g, e.Code, e.Description); challenges[0] != want {
		t.Fatalf("WWW-Authenticate %q, want %q", challenges[0], want)
	}
	if answer.Error != e.Code {
		t.Fatalf("body error %q, want %q", answer.Error, e.Code)
	}
}
