package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// tokenSource obtains the bearer token for the introspection endpoint with
// the client_credentials grant, keeps it, and fetches a new one shortly
// before it expires. At most one fetch is in flight; every caller waits for
// it within its own context.
type tokenSource struct {
	endpoint string
	id       string
	secret   string
	scope    string
	hc       *http.Client
	timeout  time.Duration
	maxBytes int64
	now      func() time.Time

	mu        sync.Mutex
	tok       string
	refreshAt time.Time // zero: keep until invalidated
	expiresAt time.Time // zero: unknown
	flight    *tokenFlight
}

type tokenFlight struct {
	done chan struct{}
	tok  string
	err  error
}

// maxEarlyRefresh is the most a token is refreshed before its expiry; a
// short-lived token is refreshed in the last fifth of its lifetime.
const maxEarlyRefresh = 30 * time.Second

// get returns a token that is not due for refresh, fetching one if needed.
func (s *tokenSource) get(ctx context.Context) (string, error) {
	s.mu.Lock()
	if s.tok != "" && (s.refreshAt.IsZero() || s.now().Before(s.refreshAt)) {
		tok := s.tok
		s.mu.Unlock()
		return tok, nil
	}
	f := s.flight
	if f == nil {
		f = &tokenFlight{done: make(chan struct{})}
		s.flight = f
		// The fetch outlives a caller that gives up: others may be waiting
		// for it. It keeps ctx's values, and its own Timeout bounds it.
		go s.run(context.WithoutCancel(ctx), f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.tok, f.err
	case <-ctx.Done():
		return "", &UpstreamError{Err: fmt.Errorf("waiting for a bearer token from %s: %w", s.endpoint, ctx.Err())}
	}
}

// invalidate forgets used if it is still the current token, so the next get
// fetches a new one. A token another call has already replaced is kept.
func (s *tokenSource) invalidate(used string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == used {
		s.tok, s.refreshAt, s.expiresAt = "", time.Time{}, time.Time{}
	}
}

func (s *tokenSource) run(ctx context.Context, f *tokenFlight) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := s.now()
	tok, life, err := s.fetch(ctx)
	s.mu.Lock()
	switch {
	case err == nil:
		s.tok, s.refreshAt, s.expiresAt = tok, time.Time{}, time.Time{}
		if life > 0 {
			s.expiresAt = start.Add(life)
			s.refreshAt = s.expiresAt.Add(-min(maxEarlyRefresh, life/5))
		}
		f.tok = tok
	case s.tok != "" && !s.expiresAt.IsZero() && s.now().Before(s.expiresAt):
		// An early refresh failed; the current token still works.
		f.tok = s.tok
	default:
		f.err = err
	}
	s.flight = nil
	s.mu.Unlock()
	close(f.done)
}

// fetch performs one client_credentials request (RFC 6749 §4.4).
func (s *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if s.scope != "" {
		form.Set("scope", s.scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, &UpstreamError{Err: fmt.Errorf("token endpoint: POST %s: %w", s.endpoint, err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", basicAuth(s.id, s.secret))
	resp, err := s.hc.Do(req)
	if err != nil {
		return "", 0, &UpstreamError{Err: fmt.Errorf("token endpoint: %w", err)}
	}
	defer resp.Body.Close()
	what := "token endpoint: POST " + s.endpoint
	if resp.StatusCode != http.StatusOK {
		e := statusError(resp, what, s.now())
		// RFC 6749 §5.2: a client authentication failure is invalid_client
		// (401, or 400 from some servers). The error code and description
		// describe this client, not a user's token, so they are kept.
		body, _ := readBody(resp, 4<<10)
		if m, err := members(body); err == nil {
			code, _ := str(m, "error")
			desc, _ := str(m, "error_description")
			if code != "" {
				detail := "error " + quote(code)
				if desc != "" {
					detail += ": " + quote(desc)
				}
				if code == "invalid_client" || code == "unauthorized_client" {
					e.Err = fmt.Errorf("%w: %s: status %d, %s", ErrCredentialsRejected, what, resp.StatusCode, detail)
				} else {
					e.Err = fmt.Errorf("%w, %s", e.Err, detail)
				}
			}
		}
		return "", 0, e
	}
	if err := checkContentType(resp.Header.Get("Content-Type"), false); err != nil {
		return "", 0, &UpstreamError{StatusCode: resp.StatusCode, Err: fmt.Errorf("%w: %s: %w", ErrBadResponse, what, err)}
	}
	body, err := readBody(resp, s.maxBytes)
	if err != nil {
		return "", 0, &UpstreamError{StatusCode: resp.StatusCode, Err: fmt.Errorf("%s: %w", what, err)}
	}
	tok, life, err := parseTokenResponse(body)
	if err != nil {
		return "", 0, &UpstreamError{StatusCode: resp.StatusCode, Err: fmt.Errorf("%w: %s: %w", ErrBadResponse, what, err)}
	}
	return tok, life, nil
}

// parseTokenResponse reads an RFC 6749 §5.1 access token response.
func parseTokenResponse(body []byte) (string, time.Duration, error) {
	m, err := members(body)
	if err != nil {
		return "", 0, err
	}
	tok, err := str(m, "access_token")
	if err != nil {
		return "", 0, err
	}
	if tok == "" {
		return "", 0, errors.New("no access_token")
	}
	typ, err := str(m, "token_type")
	if err != nil {
		return "", 0, err
	}
	if typ != "" && !strings.EqualFold(typ, "bearer") {
		return "", 0, fmt.Errorf("token_type %s is not Bearer", quote(typ))
	}
	var life time.Duration
	if raw, ok := m["expires_in"]; ok && string(raw) != "null" {
		// A number per RFC 6749; a numeric string (some servers send one)
		// decodes into a json.Number too.
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", 0, errors.New("expires_in is not a number")
		}
		secs, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsNaN(secs) || secs > 1e9 {
			return "", 0, errors.New("expires_in is not a usable number")
		}
		if secs > 0 {
			life = time.Duration(secs * float64(time.Second))
		}
	}
	return tok, life, nil
}
