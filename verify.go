package tokenguard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	ijws "github.com/tokenguard/tokenguard/internal/jws"
	"github.com/tokenguard/tokenguard/internal/jwt"
	"github.com/tokenguard/tokenguard/jwks"
)

// authenticateToken judges one extracted token.
func (g *Guard) authenticateToken(ctx context.Context, token string, path *TokenPath) (*Principal, *Error) {
	p, e := g.judgeToken(ctx, token, path)
	if e != nil {
		return nil, e
	}
	if e := g.validateClaims(ctx, p); e != nil {
		return nil, e
	}
	return p, nil
}

// judgeToken applies the built-in checks on the JWT or introspection path.
// path is set to how the token was judged.
func (g *Guard) judgeToken(ctx context.Context, token string, path *TokenPath) (*Principal, *Error) {
	if !jwt.MaybeJWS(token) {
		if e := checkSyntax(token); e != nil {
			return nil, e
		}
		if alg, ok := jwt.LooksLikeJWS(token); ok {
			// Recognisably a JWS (an unsecured "header.payload.", a header
			// with leading blanks): judged here. Sent upstream, each would
			// cost a call, and an outage would turn it into a 503 anyone
			// can ask for.
			if !ijws.Supported(alg) {
				return nil, errInvalidToken("signature algorithm not allowed", errors.New("alg "+quote(alg)+" is not in the allow-list"))
			}
			return nil, errInvalidToken("malformed token", errors.New("a JWS that cannot be parsed"))
		}
		// Opaque tokens and JWEs go to introspection at the issuer the
		// route names, and only there.
		if g.introspection == nil {
			return nil, errInvalidToken("token is not a JWT", errors.New("token is not a JWS compact serialization and no issuer introspects"))
		}
		iss, e := g.routeOpaque(ctx, token)
		if e != nil {
			return nil, e
		}
		return g.introspect(ctx, iss.intro, token, path)
	}
	p, by, e := g.verifiedJWT(ctx, token, path)
	if e != nil {
		if e.introspectable && g.introspection != nil && g.cfg.Introspection.JWTs == IntrospectJWTUnknownIssuer {
			at := e.introspectAt
			if at == nil {
				// Unparseable by the strict parser: a JWT-shaped token goes
				// only to the issuer its (unverified) iss names, never down
				// the opaque route, where another issuer could be sent it.
				var re *Error
				iss := jwt.PeekIssuer(token)
				if iss == "" {
					return nil, e
				}
				if at, re = g.introspectingIssuer(ctx, iss, "the token's iss"); re != nil {
					if re.Status >= 500 {
						return nil, re // the issuer's server is down: not the token's fault
					}
					return nil, e
				}
			}
			if at.intro != nil {
				return g.introspect(ctx, at.intro, token, path)
			}
		}
		return nil, e
	}
	if by.introspectJWTs {
		// Local checks passed; the issuer that signed it has the last word
		// (revocation). by is the issuer that verified the token, even if
		// a pattern issuer has left the LRU since.
		ip, e := g.introspect(ctx, by.intro, token, nil)
		if e != nil {
			return nil, e
		}
		if p.Scopes == nil && len(by.shape.ScopeClaims) == 0 {
			// A JWT with no scope claim (zitadel's op issues them) gets
			// the scopes its issuer states for it.
			p.Scopes, p.scopesHoldToken = ip.Scopes, ip.scopesHoldToken
		}
		// The issuer may say the token is bound when the JWT does not:
		// the request must then prove that binding. Two different
		// bindings for one token cannot both be proved.
		switch {
		case !ip.Binding.Bound():
		case !p.Binding.Bound():
			p.Binding = ip.Binding
		case p.Binding != ip.Binding:
			return nil, errBound(errors.New("the JWT's cnf and its introspection answer's cnf differ"))
		}
	}
	return p, nil
}

// verifyJWT applies RFC 8725 and RFC 9068: the header first, then the
// issuer and its key, the signature, and only then the claims.
// It also returns the issuer and the key that verified the signature, and
// for a refusal that holds as long as the issuer's key set does (a
// signature that verifies with none of its keys), the set's generation.
func (g *Guard) verifyJWT(ctx context.Context, token string) (*Principal, voucher, uint64, *Error) {
	var t jwt.Token // on the stack: Decode does not keep it
	if err := t.Decode(token); err != nil {
		e := errInvalidToken("malformed token", err)
		e.introspectable = true
		return nil, voucher{}, 0, e
	}
	h := &t.Header
	if !ijws.Supported(h.Alg) {
		// Refused before anything else, so alg none or HMAC costs nothing.
		return nil, voucher{}, 0, errInvalidToken("signature algorithm not allowed", errors.New("alg "+quote(h.Alg)+" is not in the allow-list"))
	}
	if h.HasCrit {
		// No extension is understood here, so any critical one is unknown.
		return nil, voucher{}, 0, errInvalidToken("unsupported critical header", errors.New("crit "+quote(strings.Join(h.Crit, ","))))
	}
	if !g.typeAllowed(h.Typ) {
		return nil, voucher{}, 0, errInvalidToken("token type not accepted", errors.New("typ "+quote(h.Typ)))
	}
	var binding Binding
	if t.Claims.Confirmation {
		// Judged before any key is looked up: a binding this Guard cannot
		// check is refused without a signature check.
		var e *Error
		if binding, e = g.bindingOf(t.Claims.ConfirmationJSON, "cnf claim"); e != nil {
			return nil, voucher{}, 0, e
		}
	}
	// jku, x5u, x5c and jwk headers are never read: keys come only from the
	// trusted issuer's JWKS.
	c := &t.Claims
	iss, ok := g.issuers[c.Issuer]
	if !ok && g.dynamic != nil {
		var e *Error
		if iss, e = g.lookupDynamic(ctx, c.Issuer); e != nil {
			return nil, voucher{}, 0, e
		}
		ok = iss != nil
	}
	if t.Claims.IDTokenMarkers && !isATJWT(h.Typ) && (!ok || !iss.shape.AllowIDTokenClaims) {
		// An OpenID Connect ID token is never an access token (RFC 9068 §4);
		// the audience check usually catches it, this does without one.
		// Only an issuer whose access tokens look like ID tokens (Dex,
		// Keycloak <= 24) opts out, and only with its audience checked.
		return nil, voucher{}, 0, errInvalidToken("token type not accepted", errors.New("ID token (nonce/at_hash/c_hash) presented as an access token"))
	}
	if !ok {
		// Never introspected: no server is asked about a token it did not
		// issue, and the token's iss is all that says who did.
		return nil, voucher{}, 0, errInvalidToken("untrusted issuer", errors.New("iss "+quote(c.Issuer)+" is not a trusted issuer"))
	}
	if iss.keys == nil {
		e := errInvalidToken("untrusted issuer", errors.New("issuer "+quote(c.Issuer)+" publishes no key set"))
		e.introspectable, e.introspectAt = true, iss
		return nil, voucher{}, 0, e
	}
	if !iss.algs[h.Alg] {
		return nil, voucher{}, 0, errInvalidToken("signature algorithm not allowed", errors.New("alg "+quote(h.Alg)+" is not in the allow-list of "+quote(iss.id)))
	}
	keys, err := iss.keys.Lookup(ctx, h.Kid, h.Alg)
	if err != nil {
		if errors.Is(err, jwks.ErrUnknownKey) {
			return nil, voucher{}, 0, errInvalidToken("unknown signing key", err)
		}
		// Retry-After says when the keys will next be fetched, so a
		// client that waits that long meets a new attempt.
		return nil, voucher{}, 0, errUnavailable(iss.keys.RetryIn(g.now()), err)
	}
	if len(keys) > g.maxKeysPerToken {
		// Trying them all would make every forged token cost that many
		// signature checks. Servers that omit kid publish one key.
		cause := fmt.Errorf("%d keys of issuer %s fit kid %s and alg %s, more than the %d a token may be checked against (Config.MaxKeysPerToken): the server should name its keys with kid", len(keys), quote(iss.id), quote(h.Kid), quote(h.Alg), g.maxKeysPerToken)
		g.warnOnce("keys-per-token "+iss.id, cause)
		return nil, voucher{iss: iss}, iss.keys.Generation(), errInvalidToken("unknown signing key", cause)
	}
	var signer *jwks.Key
	signingInput := []byte(t.SigningInput)
	for i := range keys {
		if ijws.Verify(h.Alg, keys[i].Public, signingInput, t.Signature) == nil {
			signer = &keys[i]
			break
		}
	}
	if signer == nil {
		return nil, voucher{iss: iss}, iss.keys.Generation(), errInvalidToken("invalid signature", errors.New("signature does not verify with kid "+quote(h.Kid)))
	}

	now := g.now()
	if !c.HasExpiry {
		return nil, voucher{iss: iss}, 0, errInvalidToken("token has no expiry", errors.New("exp claim missing"))
	}
	leeway := iss.leeway
	if !now.Before(c.Expiry.Add(leeway)) {
		return nil, voucher{iss: iss}, 0, errInvalidToken("token expired", errors.New("exp "+c.Expiry.UTC().String()))
	}
	if !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore) {
		return nil, voucher{}, 0, errInvalidToken("token not yet valid", errors.New("nbf "+c.NotBefore.UTC().String()))
	}
	if !c.IssuedAt.IsZero() && now.Add(leeway).Before(c.IssuedAt) {
		return nil, voucher{}, 0, errInvalidToken("token issued in the future", errors.New("iat "+c.IssuedAt.UTC().String()))
	}
	p := &Principal{
		Subject:  c.Subject,
		ClientID: c.ClientID,
		Issuer:   c.Issuer,
		Audience: c.Audience,
		Scopes:   g.scopesFrom(t.Payload, mergeScopes(c.Scope, c.Scp)),
		Expiry:   c.Expiry,
		IssuedAt: c.IssuedAt,
		TokenID:  c.ID,
		Kind:     KindJWT,
		Binding:  binding,
		claims:   t.PayloadText,
		guard:    g,
	}
	if e := iss.applyShape(p, t.Payload, true); e != nil {
		return nil, voucher{}, 0, e
	}
	if !iss.acceptsAudience(p.Audience) {
		return nil, voucher{iss: iss}, 0, errInvalidToken("token not meant for this resource", errors.New("aud "+quote(strings.Join(p.Audience, ","))+" lacks "+quote(strings.Join(iss.audiences, " or "))))
	}
	return p, voucher{iss: iss, key: signer.Life()}, 0, nil
}

// validateClaims runs the user's hook on a token that passed every
// built-in check, whichever path it took.
func (g *Guard) validateClaims(ctx context.Context, p *Principal) *Error {
	if g.cfg.ValidateClaims == nil {
		return nil
	}
	if err := g.cfg.ValidateClaims(ctx, p); err != nil {
		// A typed nil *Error is still a rejection, and a status that is
		// not an error status cannot be answered: both fail closed.
		var e *Error
		if errors.As(err, &e) && e != nil && validErrorStatus(e.Status) {
			return tokenWasSent(e)
		}
		return tokenWasSent(errInvalidToken("token rejected by policy", err))
	}
	return nil
}

// typeAllowed applies the typ policy. RFC 7515 §4.1.9 lets "application/"
// be omitted and media types are case-insensitive.
func (g *Guard) typeAllowed(typ string) bool {
	if isATJWT(typ) {
		return true
	}
	switch strings.ToLower(strings.TrimPrefix(strings.ToLower(typ), "application/")) {
	case "jwt", "":
		return !g.cfg.RequireATJWTType
	}
	return false
}

func isATJWT(typ string) bool {
	return strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")
}

// quote bounds and quotes attacker-controlled text for operator errors.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	// Not only ASCII controls: C1 controls, line separators and bidi
	// overrides would let a token rewrite how the log line reads.
	return `"` + strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s) + `"`
}
