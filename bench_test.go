package tokenguard_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/jwks"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// benchAlgs are the algorithms the core's request path is measured with.
var benchAlgs = []string{"RS256", "ES256", "EdDSA"}

type benchEnv struct {
	as     *oauthtest.Server
	g      *tokenguard.Guard
	tokens map[string]string
	keys   map[string]crypto.PublicKey // by alg
}

func newBenchEnv(b *testing.B) *benchEnv {
	return newBenchEnvWith(b, tokenguard.Config{})
}

func newBenchEnvWith(b *testing.B, cfg tokenguard.Config) *benchEnv {
	b.Helper()
	as := oauthtest.NewServer(oauthtest.Options{Algorithms: benchAlgs})
	b.Cleanup(as.Close)
	cfg.ResourceMetadataURL, cfg.InsecureAllowHTTP = as.ResourceMetadataURL(), true
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	set, err := jwks.New(context.Background(), as.JWKSURL(), jwks.Options{InsecureAllowHTTP: true})
	if err != nil {
		b.Fatal(err)
	}
	defer set.Close()
	env := &benchEnv{as: as, g: g, tokens: map[string]string{}, keys: map[string]crypto.PublicKey{}}
	for _, alg := range benchAlgs {
		env.tokens[alg] = as.MintWith(oauthtest.MintOptions{Alg: alg, Claims: oauthtest.Claims{"scope": "orders:read orders:write"}})
		keys, err := set.Lookup(context.Background(), "", alg)
		if err != nil || len(keys) != 1 {
			b.Fatalf("%s: %d keys, %v", alg, len(keys), err)
		}
		env.keys[alg] = keys[0].Public
	}
	return env
}

func serveOnce(b *testing.B, h http.Handler, token string) {
	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("status %d: %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_ = r.Header.Get("Authorization")
	w.WriteHeader(http.StatusOK)
})

// benchEachAlg runs one request through env's Guard per iteration, one
// sub-benchmark per algorithm, serially or on every core at once.
func benchEachAlg(b *testing.B, env *benchEnv, parallel bool) {
	h := env.g.Handler(okHandler)
	for _, alg := range benchAlgs {
		tok := env.tokens[alg]
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			if parallel {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						serveOnce(b, h, tok)
					}
				})
				return
			}
			for b.Loop() {
				serveOnce(b, h, tok)
			}
		})
	}
}

// BenchmarkHandler is one authenticated request through Guard.Handler with
// a token seen before (the verified-token cache hit): what a client that
// reuses its token for its lifetime pays per request.
func BenchmarkHandler(b *testing.B) {
	env := newBenchEnv(b)
	benchEachAlg(b, env, false)
}

// BenchmarkHandlerFirstSight is one request whose token is verified in
// full (the verified-token cache off), with the key set cached: the cost of
// a token's first request.
func BenchmarkHandlerFirstSight(b *testing.B) {
	env := newBenchEnvWith(b, tokenguard.Config{TokenCacheSize: -1})
	benchEachAlg(b, env, false)
}

// BenchmarkHandlerNewToken is first sight with the verified-token cache on,
// as configured by default: each request's token is one the cache does not
// hold, so it pays the SHA-256 key, the miss and the insertion on top of
// the full verification. A pool of tokens is cycled through a cache too
// small to keep any of them until it comes round again.
func BenchmarkHandlerNewToken(b *testing.B) {
	env := newBenchEnvWith(b, tokenguard.Config{TokenCacheSize: 8})
	const pool = 128
	h := env.g.Handler(okHandler)
	for _, alg := range benchAlgs {
		toks := make([]string, pool)
		for i := range toks {
			toks[i] = env.as.MintWith(oauthtest.MintOptions{Alg: alg, Claims: oauthtest.Claims{"scope": "orders:read orders:write"}})
		}
		b.Run(alg, func(b *testing.B) {
			before := env.g.TokenCacheStats()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				serveOnce(b, h, toks[i%pool])
				i++
			}
			if st := env.g.TokenCacheStats(); st.Hits != before.Hits {
				b.Fatalf("%d cache hits: the pool is not cycling through misses", st.Hits-before.Hits)
			}
		})
	}
}

// BenchmarkHandlerParallel is BenchmarkHandler on every core at once.
func BenchmarkHandlerParallel(b *testing.B) {
	env := newBenchEnv(b)
	benchEachAlg(b, env, true)
}

// BenchmarkHandlerFirstSightParallel is BenchmarkHandlerFirstSight on
// every core at once: parallel ns/op over serial shows whether a lock sits
// on the verification path.
func BenchmarkHandlerFirstSightParallel(b *testing.B) {
	env := newBenchEnvWith(b, tokenguard.Config{TokenCacheSize: -1})
	benchEachAlg(b, env, true)
}

// BenchmarkHarness is the request, recorder and handler without tokenguard:
// subtract it from BenchmarkHandler to get tokenguard's own cost.
func BenchmarkHarness(b *testing.B) {
	env := newBenchEnv(b)
	tok := env.tokens["RS256"]
	b.ReportAllocs()
	for b.Loop() {
		serveOnce(b, okHandler, tok)
	}
}

// BenchmarkBareVerify is the floor: hashing the signing input and checking
// the signature of the same token with crypto/* alone.
func BenchmarkBareVerify(b *testing.B) {
	env := newBenchEnv(b)
	for _, alg := range benchAlgs {
		verify := bareVerifier(b, env.tokens[alg], env.keys[alg])
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !verify() {
					b.Fatal("signature does not verify")
				}
			}
		})
	}
}

// BenchmarkFirstSightOverhead measures what the other benchmarks can only
// get by subtracting medians of separate runs: the cost of a first-sight
// request beyond the signature check and the harness. Each iteration runs
// the three back to back, each timed on its own (the floor as in
// BenchmarkBareVerify, the request as in BenchmarkHandlerFirstSight, the
// harness as in BenchmarkHarness), so drift in the machine's speed hits all
// three alike instead of whichever ran in a slow minute. ns/op is the sum
// of the three; the metrics are each one's mean and
// beyond-ns/op = request − floor − harness.
func BenchmarkFirstSightOverhead(b *testing.B) {
	env := newBenchEnvWith(b, tokenguard.Config{TokenCacheSize: -1})
	h := env.g.Handler(okHandler)
	for _, alg := range benchAlgs {
		tok := env.tokens[alg]
		verify := bareVerifier(b, tok, env.keys[alg])
		b.Run(alg, func(b *testing.B) {
			var floor, request, harness time.Duration
			for b.Loop() {
				t0 := time.Now()
				if !verify() {
					b.Fatal("signature does not verify")
				}
				t1 := time.Now()
				serveOnce(b, h, tok)
				t2 := time.Now()
				serveOnce(b, okHandler, tok)
				t3 := time.Now()
				floor, request, harness = floor+t1.Sub(t0), request+t2.Sub(t1), harness+t3.Sub(t2)
			}
			n := float64(b.N)
			b.ReportMetric(float64(floor)/n, "floor-ns/op")
			b.ReportMetric(float64(request)/n, "request-ns/op")
			b.ReportMetric(float64(harness)/n, "harness-ns/op")
			b.ReportMetric(float64(request-floor-harness)/n, "beyond-ns/op")
		})
	}
}

// BenchmarkRepeatOverhead is BenchmarkFirstSightOverhead for a token seen
// before (the verified-token cache hit): each iteration times one request
// and the harness alone back to back; beyond-ns/op = request − harness.
func BenchmarkRepeatOverhead(b *testing.B) {
	env := newBenchEnv(b)
	h := env.g.Handler(okHandler)
	for _, alg := range benchAlgs {
		tok := env.tokens[alg]
		serveOnce(b, h, tok) // cached from here on
		b.Run(alg, func(b *testing.B) {
			var request, harness time.Duration
			for b.Loop() {
				t0 := time.Now()
				serveOnce(b, h, tok)
				t1 := time.Now()
				serveOnce(b, okHandler, tok)
				t2 := time.Now()
				request, harness = request+t1.Sub(t0), harness+t2.Sub(t1)
			}
			n := float64(b.N)
			b.ReportMetric(float64(request)/n, "request-ns/op")
			b.ReportMetric(float64(harness)/n, "harness-ns/op")
			b.ReportMetric(float64(request-harness)/n, "beyond-ns/op")
		})
	}
}

// bareVerifier returns the floor's check of tok's signature with key:
// SHA-256 of the signing input and the crypto/* verification, nothing else.
func bareVerifier(b *testing.B, tok string, key crypto.PublicKey) func() bool {
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	return func() bool {
		switch k := key.(type) {
		case *rsa.PublicKey:
			d := sha256.Sum256(input)
			return rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig) == nil
		case *ecdsa.PublicKey:
			d := sha256.Sum256(input)
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(k, d[:], r, s)
		case ed25519.PublicKey:
			return ed25519.Verify(k, input, sig)
		}
		return false
	}
}

// BenchmarkHandlerOpaqueCached is one request with an opaque token whose
// introspection answer is cached: the common case for opaque tokens.
func BenchmarkHandlerOpaqueCached(b *testing.B) {
	as := oauthtest.NewServer(oauthtest.Options{})
	b.Cleanup(as.Close)
	as.RegisterClient("rs", "secret")
	g, err := tokenguard.New(context.Background(), tokenguard.Config{
		ResourceMetadataURL: as.ResourceMetadataURL(), InsecureAllowHTTP: true,
		Introspection: tokenguard.IntrospectionConfig{ClientID: "rs", ClientSecret: "secret"},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close() })
	h := g.Handler(okHandler)
	tok := as.MintOpaque(oauthtest.Claims{"scope": "orders:read orders:write"})
	serveOnce(b, h, tok) // fill the cache
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		serveOnce(b, h, tok)
	}
	if n := as.Requests("introspect"); n != 1 {
		b.Fatalf("%d introspection calls, want 1", n)
	}
}

// BenchmarkRejectGarbage is the cost of turning away a malformed token:
// what a flood of junk costs.
func BenchmarkRejectGarbage(b *testing.B) {
	env := newBenchEnv(b)
	h := env.g.Handler(okHandler)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.AAAA")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			b.Fatal(w.Code)
		}
		_, _ = io.Copy(io.Discard, w.Body)
	}
}
