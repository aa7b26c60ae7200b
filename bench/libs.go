package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	jwtmiddleware "github.com/auth0/go-jwt-middleware/v2"
	auth0jwks "github.com/auth0/go-jwt-middleware/v2/jwks"
	"github.com/auth0/go-jwt-middleware/v2/validator"
	"github.com/coreos/go-oidc/v3/oidc"
	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	xjwt "github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/tokenguard/tokenguard"
)

// Leeway is the clock skew every library is given where it has the option,
// tokenguard's default.
const Leeway = 30 * time.Second

// Target is the authorization server every library is pointed at.
type Target struct {
	JWKSURL  string // the JWK Set, fetched over loopback
	Issuer   string // iss must equal this
	Audience string // aud must contain this
	// Algorithms are the signature algorithms the resource accepts.
	Algorithms []string
}

// A Lib is one library set up to protect handlers.
type Lib struct {
	// Name is the benchmark name element: no "/" and no spaces.
	Name string
	wrap func(alg string, next http.Handler) http.Handler
	stop func()
}

// Handler protects next. alg is the algorithm of the tokens that will be
// sent: only auth0's validator is bound to one algorithm, every other
// library builds one handler for all of them.
func (l *Lib) Handler(alg string, next http.Handler) http.Handler { return l.wrap(alg, next) }

// Close stops the library's background work, if any.
func (l *Lib) Close() {
	if l.stop != nil {
		l.stop()
	}
}

// Names of the libraries, in table order.
const (
	NameTokenguardFirst  = "tokenguard-first"
	NameTokenguardRepeat = "tokenguard-repeat"
	NameGolangJWT        = "golang-jwt-keyfunc"
	NameGoOIDC           = "go-oidc"
	NameAuth0            = "auth0"
	NameJWX              = "jwx"
)

// A Constructor builds a Lib for a target. The key set may be fetched
// lazily: callers warm each Lib up with one request before measuring.
type Constructor func(ctx context.Context, t Target) (*Lib, error)

// Peers are the libraries tokenguard is compared with, in table order.
var Peers = []struct {
	Name string
	New  Constructor
}{
	{NameGolangJWT, GolangJWTKeyfunc},
	{NameGoOIDC, GoOIDC},
	{NameAuth0, Auth0},
	{NameJWX, JWX},
}

// Tokenguard is tokenguard's Guard.Handler with cfg, whose Issuer, JWKSURL,
// Audience, Algorithms and InsecureAllowHTTP are filled in from t (no
// discovery: like the peers, it is given the JWKS URL). TokenCacheSize -1 is
// the "first sight" variant: every request is verified in full.
func Tokenguard(ctx context.Context, t Target, name string, cfg tokenguard.Config) (*Lib, error) {
	cfg.Issuer, cfg.JWKSURL, cfg.Audience = t.Issuer, t.JWKSURL, t.Audience
	cfg.Algorithms = t.Algorithms
	cfg.InsecureAllowHTTP = true
	g, err := tokenguard.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Lib{
		Name: name,
		wrap: func(_ string, next http.Handler) http.Handler { return g.Handler(next) },
		stop: func() { _ = g.Close() },
	}, nil
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[7:])
	return tok, tok != ""
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	w.WriteHeader(http.StatusUnauthorized)
}

type claimsKey struct{}

// GolangJWTKeyfunc is a minimal correct middleware on golang-jwt/v5 with
// keyfunc/v3's default JWKS storage (keyfunc.NewDefaultCtx: refresh every
// hour, and an unknown kid refreshes at most once per 5 minutes). It
// parses the Bearer header, checks the signature with the JWK the kid names
// (its alg must match the header's), allows only the target's algorithms,
// and requires iss, aud and exp.
func GolangJWTKeyfunc(ctx context.Context, t Target) (*Lib, error) {
	ctx, cancel := context.WithCancel(ctx)
	kf, err := keyfunc.NewDefaultCtx(ctx, []string{t.JWKSURL})
	if err != nil {
		cancel()
		return nil, err
	}
	parser := gjwt.NewParser(
		gjwt.WithValidMethods(t.Algorithms),
		gjwt.WithIssuer(t.Issuer),
		gjwt.WithAudience(t.Audience),
		gjwt.WithExpirationRequired(),
		gjwt.WithLeeway(Leeway),
	)
	wrap := func(_ string, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, ok := bearer(r)
			if !ok {
				unauthorized(w)
				return
			}
			tok, err := parser.Parse(raw, kf.Keyfunc)
			if err != nil || !tok.Valid {
				unauthorized(w)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, tok.Claims)))
		})
	}
	return &Lib{Name: NameGolangJWT, wrap: wrap, stop: cancel}, nil
}

// GoOIDC is coreos/go-oidc/v3: oidc.NewRemoteKeySet on the JWKS URL and
// oidc.NewVerifier with ClientID set to the audience (go-oidc checks that
// aud contains ClientID, so SkipClientIDCheck stays false) and the
// target's algorithms. The verifier is built for ID tokens: it checks iss,
// aud, exp (required; no leeway) and nbf (5 minutes' leeway, fixed), and
// nothing access-token specific (typ, for one, is not looked at). Its key
// set fetches on the first request and again whenever no cached key
// verifies the token (concurrent fetches are coalesced).
func GoOIDC(ctx context.Context, t Target) (*Lib, error) {
	keys := oidc.NewRemoteKeySet(ctx, t.JWKSURL)
	v := oidc.NewVerifier(t.Issuer, keys, &oidc.Config{
		ClientID:             t.Audience,
		SupportedSigningAlgs: t.Algorithms,
	})
	wrap := func(_ string, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, ok := bearer(r)
			if !ok {
				unauthorized(w)
				return
			}
			tok, err := v.Verify(r.Context(), raw)
			if err != nil {
				unauthorized(w)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, tok)))
		})
	}
	return &Lib{Name: NameGoOIDC, wrap: wrap}, nil
}

// Auth0 is auth0/go-jwt-middleware/v2: jwtmiddleware.New with the
// validator package on jwks.NewCachingProvider (the JWKS URL given with
// WithCustomJWKSURI; default TTL of one minute, no refresh on an unknown
// kid). Its validator takes exactly one algorithm, so there is one
// validator (and middleware) per algorithm, all sharing one provider. It
// checks iss and aud, and exp and nbf when present (it has no option to
// require exp).
func Auth0(_ context.Context, t Target) (*Lib, error) {
	u, err := url.Parse(t.JWKSURL)
	if err != nil {
		return nil, err
	}
	iss, err := url.Parse(t.Issuer)
	if err != nil {
		return nil, err
	}
	provider := auth0jwks.NewCachingProvider(iss, 0, auth0jwks.WithCustomJWKSURI(u))
	mws := make(map[string]*jwtmiddleware.JWTMiddleware, len(t.Algorithms))
	for _, alg := range t.Algorithms {
		v, err := validator.New(provider.KeyFunc, validator.SignatureAlgorithm(alg), t.Issuer, []string{t.Audience},
			validator.WithAllowedClockSkew(Leeway))
		if err != nil {
			return nil, fmt.Errorf("auth0 validator for %s: %w", alg, err)
		}
		mws[alg] = jwtmiddleware.New(v.ValidateToken)
	}
	wrap := func(alg string, next http.Handler) http.Handler {
		mw, ok := mws[alg]
		if !ok {
			panic("bench: auth0 has no validator for " + alg)
		}
		return mw.CheckJWT(next)
	}
	return &Lib{Name: NameAuth0, wrap: wrap}, nil
}

// JWX is lestrrat-go/jwx/v3 used plainly: a jwk.Cache with the JWKS URL
// registered (refreshed as the response's Cache-Control says, within
// httprc's default bounds of 15 minutes to 30 days; no refresh on an
// unknown kid) and, per request, jwt.Parse with the cached set,
// jwt.WithValidate(true), WithIssuer, WithAudience and exp required. The
// key is chosen by kid and must carry an alg, which the token's must match.
func JWX(ctx context.Context, t Target) (*Lib, error) {
	ctx, cancel := context.WithCancel(ctx)
	c, err := jwk.NewCache(ctx, httprc.NewClient())
	if err != nil {
		cancel()
		return nil, err
	}
	if err := c.Register(ctx, t.JWKSURL); err != nil {
		cancel()
		return nil, err
	}
	set, err := c.CachedSet(t.JWKSURL)
	if err != nil {
		cancel()
		return nil, err
	}
	opts := []xjwt.ParseOption{
		xjwt.WithKeySet(set),
		xjwt.WithValidate(true),
		xjwt.WithIssuer(t.Issuer),
		xjwt.WithAudience(t.Audience),
		xjwt.WithRequiredClaim(xjwt.ExpirationKey),
		xjwt.WithAcceptableSkew(Leeway),
	}
	wrap := func(_ string, next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			raw, ok := bearer(r)
			if !ok {
				unauthorized(w)
				return
			}
			tok, err := xjwt.ParseString(raw, opts...)
			if err != nil {
				unauthorized(w)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, tok)))
		})
	}
	return &Lib{Name: NameJWX, wrap: wrap, stop: cancel}, nil
}

// OK answers every request 200 after reading the Authorization header: the
// protected handler of every measurement.
var OK = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_ = r.Header.Get("Authorization")
	w.WriteHeader(http.StatusOK)
})
