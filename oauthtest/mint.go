package oauthtest

import "time"

// Claims is a JWT claims set. In [Server.Mint] and [MintOptions], a claim set
// to nil removes the default for that claim, and a time.Time value is encoded
// as a NumericDate (seconds since the epoch).
type Claims map[string]any

// MintOptions controls [Server.MintWith].
type MintOptions struct {
	// Alg selects the current key for this algorithm. This defaults to the
	// default signer (the first of Options.Algorithms).
	Alg string

	// KeyID selects a specific signing key, which may be retired. This
	// defaults to choosing by Alg.
	KeyID string

	// Header is merged into the default header {"alg", "kid", "typ":
	// "at+jwt"}; a nil value removes the entry. It changes only what the
	// header says: the token is still signed with the selected key and its
	// algorithm, so {"alg": "HS256"} forges a mismatched header. This
	// defaults to no changes.
	Header map[string]any

	// Claims is merged into the default claims as for [Server.Mint].
	Claims Claims
}

// Mint returns an access token (RFC 9068) signed with the default key. The
// defaults below are filled in for claims absent from claims; a claim set to
// nil is left out, so Claims{"exp": nil} mints a token without exp.
//
//	iss        Issuer
//	aud        Resource()
//	sub        "user-1"
//	client_id  "client-1"
//	iat        now
//	exp        now + Options.TokenLifetime
//	jti        a random string
//
// There is no default scope. The header is {"alg": the key's algorithm, "kid":
// the key's id, "typ": "at+jwt"}. Mint panics if the server has not started.
func (s *Server) Mint(claims Claims) string {
	return s.MintWith(MintOptions{Claims: claims})
}

// MintWith is [Server.Mint] with a choice of key and changes to the header.
// It panics if the server has not started or if no key fits o.Alg and
// o.KeyID.
func (s *Server) MintWith(o MintOptions) string {
	if s.URL == "" {
		panic("oauthtest: Mint before the server started")
	}
	k := s.signingKeyFor(o.Alg, o.KeyID)
	now := s.opts.Now()
	header := map[string]any{"alg": k.alg, "kid": k.kid, "typ": "at+jwt"}
	merge(header, o.Header)
	claims := s.defaultClaims(now)
	merge(claims, o.Claims)
	tok, err := SignJWT(header, claims, k.signer, k.alg)
	if err != nil {
		panic(err.Error())
	}
	return tok
}

// merge copies src into dst: nil values delete, time.Time values become
// NumericDates.
func merge[M ~map[string]any](dst map[string]any, src M) {
	for name, v := range src {
		switch v := v.(type) {
		case nil:
			delete(dst, name)
		case time.Time:
			dst[name] = v.Unix()
		default:
			dst[name] = v
		}
	}
}
