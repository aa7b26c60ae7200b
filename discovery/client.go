package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/tokenguard/tokenguard/internal/fetch"
)

// Sentinel errors callers branch on with errors.Is. Every error this package
// returns wraps at most the causes it names, so errors.Is sees through it.
var (
	// ErrIssuerMismatch reports an authorization server metadata document
	// whose issuer is not, byte for byte, the issuer it was fetched for
	// (RFC 8414 §3.3). It is a security signal: no other candidate URL is
	// tried after it.
	ErrIssuerMismatch = errors.New("discovery: issuer mismatch")
	// ErrResourceMismatch reports a protected resource metadata document
	// whose resource is not the resource identifier it was fetched for
	// (RFC 9728 §3.3).
	ErrResourceMismatch = errors.New("discovery: resource mismatch")
	// ErrNotFound reports that no metadata document exists: every URL tried
	// answered 404 Not Found or 410 Gone.
	ErrNotFound = errors.New("discovery: metadata not found")
	// ErrInsecureURL reports a URL, fetched or found inside a document (or
	// the target of a redirect), that is not https while plain HTTP is not
	// allowed, or whose scheme is neither https nor http.
	ErrInsecureURL = fetch.ErrInsecureURL
	// ErrTooLarge reports a document larger than Client.MaxBytes.
	ErrTooLarge = fetch.ErrTooLarge
)

// Client fetches metadata documents. The zero value is ready to use and
// strict: https only, 10 seconds and 1 MiB per document, and a nil *Client
// behaves as the zero value. A Client is safe for concurrent use as long as
// its fields are not changed meanwhile.
type Client struct {
	// HTTPClient sends the requests. The zero value means
	// http.DefaultClient; either way the deadline of each fetch comes from
	// Timeout, and redirects are followed only to URLs that pass the same
	// scheme check as the URL fetched.
	HTTPClient *http.Client
	// Timeout bounds each fetch, body included. The zero value means 10
	// seconds.
	Timeout time.Duration
	// MaxBytes caps the size of each document. The zero value means 1 MiB
	// (1<<20 bytes).
	MaxBytes int64
	// InsecureAllowHTTP accepts http:// URLs, both the ones fetched and the
	// ones found inside documents (authorization_servers, issuer, jwks_uri,
	// token_endpoint, introspection_endpoint, …). The zero value means
	// https only. Set it only for tests and development.
	InsecureAllowHTTP bool
}

// get fetches rawURL within the client's bounds.
func (c *Client) get(ctx context.Context, rawURL string) ([]byte, error) {
	resp, err := fetch.Get(ctx, rawURL, fetch.Options{
		Client:        c.HTTPClient,
		Timeout:       c.Timeout,
		MaxBytes:      c.MaxBytes,
		AllowInsecure: c.InsecureAllowHTTP,
	})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// checkURL applies the scheme rule to a URL member of a document.
func (c *Client) checkURL(doc, docURL, member, value string) error {
	if _, err := fetch.CheckURL(value, c.InsecureAllowHTTP); err != nil {
		return fmt.Errorf("discovery: %s at %s: member %s: %w", doc, docURL, member, err)
	}
	return nil
}

// checkIssuerURL validates an issuer identifier (RFC 8414 §2): an absolute
// http(s) URL with no query, fragment or user info. The scheme rule is left
// to the caller.
func checkIssuerURL(issuer string) (*url.URL, error) {
	u, err := fetch.CheckURL(issuer, true)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.ForceQuery {
		return nil, fmt.Errorf("URL %q must not have a query", issuer)
	}
	return u, nil
}

// member binds one known JSON member name to where its value is decoded.
type member struct {
	name string
	dst  any
}

// decodeObject parses body as exactly one JSON object with no trailing data
// and no duplicate member names. Each known member is decoded into its
// destination by its exact, case-sensitive name; every other member is
// returned as sent. The result is nil when there are no other members.
func decodeObject(doc, docURL string, body []byte, known []member) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("discovery: %s at %s: invalid JSON: %w", doc, docURL, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("discovery: %s at %s: not a JSON object", doc, docURL)
	}
	all := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("discovery: %s at %s: invalid JSON: %w", doc, docURL, err)
		}
		name := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("discovery: %s at %s: member %q: invalid JSON: %w", doc, docURL, name, err)
		}
		if _, dup := all[name]; dup {
			return nil, fmt.Errorf("discovery: %s at %s: member %q appears more than once", doc, docURL, name)
		}
		all[name] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, fmt.Errorf("discovery: %s at %s: invalid JSON: %w", doc, docURL, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("discovery: %s at %s: trailing data after the JSON object", doc, docURL)
	}
	for _, m := range known {
		raw, ok := all[m.name]
		if !ok {
			continue
		}
		delete(all, m.name)
		if err := json.Unmarshal(raw, m.dst); err != nil {
			return nil, fmt.Errorf("discovery: %s at %s: member %s: %w", doc, docURL, m.name, err)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	return all, nil
}
