package bench_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/bench"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// TestLibsCheckTokens guards the benchmarks against a misconfigured library
// looking fast: every library, as set up for the benchmarks, accepts the
// benchmark tokens and rejects a wrong audience, a wrong issuer, an expired
// token and a broken signature. Checks where the libraries legitimately
// differ (a token without exp, an ID token, typ) are only logged.
func TestLibsCheckTokens(t *testing.T) {
	e := getEnv(t)
	as := e.as
	mint := func(alg string, c oauthtest.Claims) string {
		return as.MintWith(oauthtest.MintOptions{Alg: alg, Claims: c})
	}
	for _, l := range e.libs {
		t.Run(l.Name, func(t *testing.T) {
			for _, alg := range algs {
				h := l.Handler(alg, bench.OK)
				must := map[string]struct {
					token string
					want  int
				}{
					"valid":         {e.tokens[alg], http.StatusOK},
					"wrong aud":     {mint(alg, oauthtest.Claims{"aud": "https://other.example"}), http.StatusUnauthorized},
					"wrong iss":     {mint(alg, oauthtest.Claims{"iss": "https://evil.example"}), http.StatusUnauthorized},
					"expired":       {mint(alg, oauthtest.Claims{"exp": time.Now().Add(-time.Hour), "iat": time.Now().Add(-2 * time.Hour)}), http.StatusUnauthorized},
					"bad signature": {breakSignature(e.tokens[alg]), http.StatusUnauthorized},
				}
				for name, c := range must {
					if got := serve(h, c.token); got != c.want {
						t.Errorf("%s %s: status %d, want %d", alg, name, got, c.want)
					}
				}
				// Recorded only: what a strict RFC 9068 validator rejects.
				if alg == "ES256" {
					for name, tok := range map[string]string{
						"no exp":   mint(alg, oauthtest.Claims{"exp": nil}),
						"ID token": as.MintWith(oauthtest.MintOptions{Alg: alg, Header: map[string]any{"typ": "JWT"}, Claims: oauthtest.Claims{"nonce": "n"}}),
					} {
						t.Logf("%s %s: status %d", alg, name, serve(h, tok))
					}
				}
			}
		})
	}
}

// breakSignature flips one bit in the middle of the signature.
func breakSignature(tok string) string {
	b := []byte(tok)
	i := len(b) - 10
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
