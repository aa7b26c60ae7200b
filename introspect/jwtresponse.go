package introspect

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ijws "github.com/tokenguard/tokenguard/internal/jws"
	"github.com/tokenguard/tokenguard/internal/jwt"
)

// jwtResponseType is the media type of an RFC 9701 response, asked for in
// Accept and required in Content-Type.
const jwtResponseType = "application/token-introspection+jwt"

// jwtResponseSkew is how far a JWT response's iat may be from the local
// clock, either way. RFC 9701 responses are made for one request, so an iat
// far in the past is a replayed or cached answer.
const jwtResponseSkew = 5 * time.Minute

// verifyJWTResponse checks an RFC 9701 §5 response and returns its
// token_introspection claim. Any failure is an UpstreamError wrapping
// ErrBadResponse: an answer that does not verify says nothing about the
// token.
func (c *Client) verifyJWTResponse(ctx context.Context, body []byte) ([]byte, error) {
	bad := func(err error) error {
		return &UpstreamError{StatusCode: 200, Err: fmt.Errorf("%w: JWT response: %w", ErrBadResponse, err)}
	}
	t, err := jwt.Parse(strings.TrimSpace(string(body)))
	if err != nil {
		return nil, bad(err)
	}
	h := &t.Header
	if !ijws.Supported(h.Alg) || len(c.respAlgs) > 0 && !slices.Contains(c.respAlgs, h.Alg) {
		return nil, bad(fmt.Errorf("alg %s not allowed", quote(h.Alg)))
	}
	if h.HasCrit {
		return nil, bad(errors.New("unsupported crit header"))
	}
	// RFC 7515 §4.1.9: "application/" may be omitted; media types are
	// case-insensitive.
	if typ := strings.TrimPrefix(strings.ToLower(h.Typ), "application/"); typ != "token-introspection+jwt" {
		return nil, bad(fmt.Errorf("typ %s is not token-introspection+jwt", quote(h.Typ)))
	}
	keys, err := c.keys.Lookup(ctx, h.Kid, h.Alg)
	if err != nil {
		return nil, &UpstreamError{Err: fmt.Errorf("JWT response: %w", err)}
	}
	verified := false
	for _, k := range keys {
		if ijws.Verify(h.Alg, k.Public, []byte(t.SigningInput), t.Signature) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, bad(fmt.Errorf("signature does not verify (kid %s)", quote(h.Kid)))
	}
	cl := &t.Claims
	if cl.Issuer != c.respIss {
		return nil, bad(fmt.Errorf("iss %s is not %s", quote(cl.Issuer), quote(c.respIss)))
	}
	if !slices.Contains(cl.Audience, c.id) {
		return nil, bad(fmt.Errorf("aud %s lacks this client's id", quote(strings.Join(cl.Audience, " "))))
	}
	if cl.IssuedAt.IsZero() {
		return nil, bad(errors.New("no iat"))
	}
	if d := c.now().Sub(cl.IssuedAt); d > jwtResponseSkew || d < -jwtResponseSkew {
		return nil, bad(fmt.Errorf("iat %s is more than %s from now", cl.IssuedAt.UTC().Format(time.RFC3339), jwtResponseSkew))
	}
	m, err := members(t.Payload)
	if err != nil {
		return nil, bad(err)
	}
	ti, ok := m["token_introspection"]
	if !ok || len(ti) == 0 || ti[0] != '{' {
		return nil, bad(errors.New("token_introspection claim missing or not an object"))
	}
	return ti, nil
}
