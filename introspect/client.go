package introspect

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokenguard/tokenguard/internal/fetch"
	"github.com/tokenguard/tokenguard/jwks"
)

// Client introspects tokens at one endpoint. It is safe for concurrent use.
// It needs no Close: it runs nothing in the background, except that a
// client_credentials token fetch finishes (within Timeout) for the callers
// still waiting on it when the caller that started it gives up.
type Client struct {
	endpoint  string
	method    AuthMethod
	id        string
	secret    string
	bearer    string       // static bearer token
	tokens    *tokenSource // client_credentials bearer token
	hint      bool
	issuers   []string
	audiences []string
	needAud   bool
	keys      *jwks.Set
	respIss   string
	respAlgs  []string // empty: every supported one
	hc        *http.Client
	timeout   time.Duration
	maxBytes  int64
	now       func() time.Time
	leeway    time.Duration
}

// AuthMethod returns the client authentication in use, as given or as New
// chose it.
func (c *Client) AuthMethod() AuthMethod { return c.method }

// Introspect asks the endpoint about token and validates the answer. An
// inactive token is a Result with Active false and a nil error. Otherwise
// the error is a *TokenError or an *UpstreamError; see the package
// documentation. The token never appears in an error.
func (c *Client) Introspect(ctx context.Context, token string) (_ *Result, err error) {
	if token == "" {
		return nil, &TokenError{Reason: "empty token"}
	}
	// A server may echo the token in what it answers (in iss, aud, a
	// member name, an error body); errors end up in logs.
	defer func() {
		if err != nil {
			err = redact(err, token, c.endpoint)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	body, err := c.exchange(ctx, token)
	if err != nil {
		return nil, err
	}
	obj := body
	if c.keys != nil {
		if obj, err = c.verifyJWTResponse(ctx, body); err != nil {
			return nil, err
		}
	}
	return c.result(obj)
}

// Judge validates raw, the Raw of an earlier Result (an answer kept in a
// store shared by a fleet), exactly as Introspect validates a fresh
// answer, without a call: an answer kept past its exp, or one whose
// issuer or audience is not acceptable here, is refused as it would be
// now. Its errors are those of Introspect.
func (c *Client) Judge(raw []byte) (*Result, error) {
	return c.result(raw)
}

// exchange posts the request and returns the body of a 200 response, after
// one retry with a fresh bearer token when the endpoint answers 401 to a
// client_credentials token.
func (c *Client) exchange(ctx context.Context, token string) ([]byte, error) {
	bearer := c.bearer
	if c.tokens != nil {
		var err error
		if bearer, err = c.tokens.get(ctx); err != nil {
			return nil, err
		}
	}
	resp, err := c.send(ctx, token, bearer)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusUnauthorized && c.tokens != nil {
		discard(resp)
		// The token may have been revoked or expired early; another call
		// may already have replaced it, in which case this one uses that.
		c.tokens.invalidate(bearer)
		if bearer, err = c.tokens.get(ctx); err != nil {
			return nil, err
		}
		if resp, err = c.send(ctx, token, bearer); err != nil {
			return nil, err
		}
	}
	defer resp.Body.Close()
	return c.readOK(resp)
}

// send builds and sends one introspection request.
func (c *Client) send(ctx context.Context, token, bearer string) (*http.Response, error) {
	form := url.Values{"token": {token}}
	if c.hint {
		form.Set("token_type_hint", TokenTypeHintAccessToken)
	}
	if c.method == AuthClientSecretPost {
		form.Set("client_id", c.id)
		form.Set("client_secret", c.secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &UpstreamError{Err: fmt.Errorf("POST %s: %w", c.endpoint, err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.keys != nil {
		req.Header.Set("Accept", jwtResponseType)
	} else {
		req.Header.Set("Accept", "application/json")
	}
	switch c.method {
	case AuthClientSecretBasic:
		req.Header.Set("Authorization", basicAuth(c.id, c.secret))
	case AuthBearer:
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// A *url.Error names the method, the URL and the cause; the body
		// (with the token) is not part of it.
		return nil, &UpstreamError{Err: err}
	}
	return resp, nil
}

// readOK turns a response into the body of a 200 answer or an UpstreamError.
func (c *Client) readOK(resp *http.Response) ([]byte, error) {
	if resp.StatusCode == http.StatusBadRequest {
		// RFC 7009 §2.2.1's unsupported_token_type, which some servers
		// (panva's oidc-provider) answer for tokens they do not introspect,
		// such as structured ones: a verdict on the token, not an outage.
		code := errorCode(resp.Body)
		discard(resp)
		if code == "unsupported_token_type" {
			return nil, &TokenError{Reason: "token is not active", Detail: "the server does not introspect this kind of token (400 unsupported_token_type)"}
		}
		e := statusError(resp, "POST "+c.endpoint, c.now())
		e.ErrorCode = code
		return nil, e
	}
	if resp.StatusCode != http.StatusOK {
		discard(resp)
		return nil, statusError(resp, "POST "+c.endpoint, c.now())
	}
	want := "application/json"
	if c.keys != nil {
		want = jwtResponseType
	}
	if err := checkContentType(resp.Header.Get("Content-Type"), c.keys != nil); err != nil {
		return nil, &UpstreamError{StatusCode: resp.StatusCode, Err: fmt.Errorf("%w: POST %s: %w (want %s)", ErrBadResponse, c.endpoint, err, want)}
	}
	body, err := readBody(resp, c.maxBytes)
	if err != nil {
		return nil, &UpstreamError{StatusCode: resp.StatusCode, Err: fmt.Errorf("POST %s: %w", c.endpoint, err)}
	}
	return body, nil
}

// statusError describes a non-200 answer. The body is never quoted: a
// server may echo the token in it.
func statusError(resp *http.Response, what string, now time.Time) *UpstreamError {
	e := &UpstreamError{
		StatusCode: resp.StatusCode,
		RetryAfter: fetch.ParseRetryAfter(resp.Header.Get("Retry-After"), now),
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		e.Err = fmt.Errorf("%w: %s: status %d", ErrCredentialsRejected, what, resp.StatusCode)
	default:
		e.Err = fmt.Errorf("%s: status %d", what, resp.StatusCode)
	}
	return e
}

// checkContentType accepts a JSON media type (application/json or any
// +json), or with jwt the RFC 9701 type. An absent Content-Type is let
// through to the parser in JSON mode only.
func checkContentType(ct string, jwt bool) error {
	if ct == "" {
		if jwt {
			return errors.New("no content type")
		}
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		if jwt && mt == jwtResponseType {
			return nil
		}
		if !jwt && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return nil
		}
	}
	return fmt.Errorf("content type %s", quote(ct))
}

// readBody reads at most max bytes and fails beyond.
func readBody(resp *http.Response, max int64) ([]byte, error) {
	if resp.ContentLength > max {
		return nil, fmt.Errorf("%w: Content-Length %d exceeds %d bytes", fetch.ErrTooLarge, resp.ContentLength, max)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("%w: body exceeds %d bytes", fetch.ErrTooLarge, max)
	}
	return body, nil
}

// errorCode reads the RFC 6749 §5.2 error member of a small JSON error
// body; "" when there is none. The body is never quoted anywhere: a server
// may echo the token in it.
func errorCode(body io.Reader) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.NewDecoder(io.LimitReader(body, 4<<10)).Decode(&e) != nil || len(e.Error) > 64 {
		return ""
	}
	// Error codes in use are short words of letters, digits, '_', '-' and
	// '.' (RFC 6749 §5.2 allows more, but nothing else occurs, and free
	// text could carry the token).
	if len(e.Error) > 40 {
		return ""
	}
	for _, c := range []byte(e.Error) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return ""
		}
	}
	return e.Error
}

// discard drains a little of an unwanted body so the connection can be
// reused, and closes it.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
}

// basicAuth encodes RFC 6749 §2.3.1 client_secret_basic: the id and the
// secret are each application/x-www-form-urlencoded, then joined by ':' and
// base64-encoded. (http.Request.SetBasicAuth skips the first step, which
// breaks an id with ':' and any non-ASCII secret at a compliant server.)
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}
