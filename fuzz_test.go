package tokenguard_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// FuzzTamperedToken sends byte-level variations of valid tokens through a
// Guard with the verified-token cache on, the original token cached. The
// signature covers the exact bytes of header and payload, and decoding is
// strict, so any variation must be rejected with a 400 or 401 and the
// answer RFC 6750 prescribes; none may panic, reach the handler or be
// answered from the cache. (An ECDSA signature (r, n-s) would be a second
// valid spelling; fuzzing does not find one by chance, and it would carry
// the same claims.)
func FuzzTamperedToken(f *testing.F) {
	as := shared(f)
	g := newGuard(f, as, tokenguard.Config{})
	var reached bool
	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
	originals := map[string]bool{}
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		tok := as.MintWith(oauthtest.MintOptions{Alg: alg, Claims: oauthtest.Claims{"scope": "a b"}})
		originals[tok] = true
		if w := call(h, "Bearer "+tok); w.Code != 200 || !reached {
			f.Fatalf("%s: valid token: %d", alg, w.Code)
		}
		f.Add(tok, 0, byte('A'))
		f.Add(tok, len(tok)/2, byte('.'))
		f.Add(tok, len(tok)-1, byte('B'))
		f.Add(tok, strings.IndexByte(tok, '.'), byte('x'))
		f.Add(tok, 5, byte(0))
	}
	f.Fuzz(func(t *testing.T, tok string, at int, b byte) {
		if len(tok) == 0 {
			return
		}
		at %= len(tok)
		if at < 0 {
			at = -at
		}
		mutated := tok[:at] + string([]byte{b}) + tok[at+1:]
		if originals[mutated] {
			return // the mutation changed nothing
		}
		reached = false
		w := call(h, "Bearer "+mutated)
		challenge := w.Header().Get("WWW-Authenticate")
		switch {
		case reached || w.Code == 200:
			t.Fatalf("tampered token accepted: %q", mutated)
		case w.Code == 400 && strings.Contains(challenge, `error="invalid_request"`):
		case w.Code == 401 && (challenge == wantChallenge(g, "", "") || strings.Contains(challenge, `error="invalid_token"`)):
		default:
			t.Fatalf("tampered token %q: %d %q", mutated, w.Code, challenge)
		}
	})
}
