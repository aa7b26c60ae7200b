// Package fetch performs the bounded HTTP GETs that discovery and key-set
// refreshes are made of: every fetch has a deadline, a size cap, a scheme
// check, and an error that names the URL and what was wrong.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrInsecureURL reports a URL that is not https (or http, when the
	// caller allows insecure transport), including a redirect target.
	ErrInsecureURL = errors.New("insecure URL")
	// ErrTooLarge reports a body larger than the configured cap.
	ErrTooLarge = errors.New("response too large")
	// ErrStatus reports a non-200 status; see StatusError for the code.
	ErrStatus = errors.New("unexpected status")
)

// StatusError is returned for a response whose status is not 200 OK.
type StatusError struct {
	URL        string
	StatusCode int
	// RetryAfter is the server's Retry-After hint, zero when absent.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: status %d", e.URL, e.StatusCode)
}

// Is makes errors.Is(err, ErrStatus) true for every StatusError.
func (e *StatusError) Is(target error) bool { return target == ErrStatus }

// Options bounds one fetch.
type Options struct {
	// Client sends the request. Nil means a client with no timeout of its own;
	// the deadline comes from Timeout.
	Client *http.Client
	// Timeout bounds the whole exchange, body included. Zero means 10s.
	Timeout time.Duration
	// MaxBytes caps the body. Zero means 1 MiB.
	MaxBytes int64
	// Accept is sent as the Accept header. Empty means application/json.
	Accept string
	// AllowInsecure accepts http:// URLs (for tests and development).
	AllowInsecure bool
}

// Response is the part of a response the callers use.
type Response struct {
	Body   []byte
	Header http.Header
}

// CheckURL parses raw and requires an absolute https URL with a host and no
// fragment or user info. With allowInsecure, http is accepted too.
func CheckURL(raw string, allowInsecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	if u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("URL %q is not absolute", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("URL %q must not carry user info", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, fmt.Errorf("URL %q must not have a fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowInsecure {
			return nil, fmt.Errorf("URL %q: %w: https required (set InsecureAllowHTTP only for development against a loopback server)", raw, ErrInsecureURL)
		}
	default:
		return nil, fmt.Errorf("URL %q: %w: scheme %q", raw, ErrInsecureURL, u.Scheme)
	}
	return u, nil
}

// Get fetches rawURL with the bounds in o. It accepts only 200 OK and, when
// the response names a media type, one that is JSON (application/json,
// application/jwk-set+json or any +json type), so an HTML error page is an
// error and not a parse failure further down.
func Get(ctx context.Context, rawURL string, o Options) (*Response, error) {
	if _, err := CheckURL(rawURL, o.AllowInsecure); err != nil {
		return nil, err
	}
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	maxBytes := o.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 1 << 20
	}
	accept := o.Accept
	if accept == "" {
		accept = "application/json"
	}
	client := guardRedirects(o.Client, o.AllowInsecure)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		// *url.Error already names the method and URL.
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused; never much.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, &StatusError{URL: rawURL, StatusCode: resp.StatusCode, RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return nil, fmt.Errorf("GET %s: content type %q is not JSON", rawURL, ct)
		}
	}
	if resp.ContentLength > maxBytes {
		return nil, fmt.Errorf("GET %s: %w: Content-Length %d exceeds %d bytes", rawURL, ErrTooLarge, resp.ContentLength, maxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: read body: %w", rawURL, err)
	}
	if int64(len(body)) > maxBytes {
		return nil, fmt.Errorf("GET %s: %w: body exceeds %d bytes", rawURL, ErrTooLarge, maxBytes)
	}
	return &Response{Body: body, Header: resp.Header}, nil
}

// guardRedirects returns a shallow copy of base whose redirect policy also
// applies the scheme check to every target, so an https URL cannot be
// redirected to plain http. The caller's own policy still runs after it.
func guardRedirects(base *http.Client, allowInsecure bool) *http.Client {
	if base == nil {
		base = http.DefaultClient
	}
	hc := *base
	next := base.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		u := *req.URL
		u.Fragment, u.RawFragment = "", ""
		if _, err := CheckURL(u.String(), allowInsecure); err != nil {
			return fmt.Errorf("redirect refused: %w", err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &hc
}

// ParseRetryAfter reads a Retry-After value in either of its forms
// (delay-seconds or HTTP-date). It returns zero when v is empty or invalid,
// and for a delay too long for a time.Duration.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	// delay-seconds = 1*DIGIT (RFC 9110, section 10.2.3): no sign, leading
	// zeros allowed.
	if strings.Trim(v, "0123456789") == "" {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(math.MaxInt64/time.Second) {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
