package tokenguard_test

// Benchmarks of the shapes of issue 15 (scale): a key set of many keys and
// tokens without kid, forged tokens, key-set refreshes with many cached
// tokens, memory per cached token, large tokens and scope lists, the
// cache's capacity and hits at 100k+ cached tokens. They use only the
// public API (tokenguard.Config, Guard.Handler, Guard.Authenticate,
// Guard.TokenCacheStats, oauthtest), so the same file measures the cache
// before and after its rewrite.
//
// Conventions, as in bench_test.go: one request is httptest.NewRequest +
// Authorization + httptest.NewRecorder through Guard.Handler(okHandler).
// Where a cost beyond the unavoidable matters, each iteration times the
// floor (bareVerifier: the signature check with crypto/* alone), the
// request and the harness (the same request to okHandler without the
// guard) back to back; ns/op is then their sum and the metrics are
// floor-ns/op, request-ns/op, harness-ns/op and
// beyond-ns/op = request − floor − harness. status is the status code
// every request of the benchmark got.
//
// Tokens are minted before any timer starts and kept across
// sub-benchmarks; cases with a million cached tokens run only with
// TOKENGUARD_BENCH_1M=1 (minting and verifying a million tokens takes
// minutes). BenchmarkScaleRotation and BenchmarkScaleCapacity want few
// iterations: -benchtime=20x and -benchtime=3x.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/jwks"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// scaleMillionEnv set to 1 adds the cases with 1,000,000 cached tokens.
const scaleMillionEnv = "TOKENGUARD_BENCH_1M"

// scaleCounts are the numbers of cached tokens measured: 10k and 100k,
// and 1M when scaleMillionEnv is set.
func scaleCounts() []int {
	n := []int{10_000, 100_000}
	if os.Getenv(scaleMillionEnv) == "1" {
		n = append(n, 1_000_000)
	}
	return n
}

// countName is n as a sub-benchmark name: 1, 10k, 100k, 1M.
func countName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000 && n%1_000 == 0:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}

// scaleClaims are the claims of every token beyond oauthtest's defaults.
var scaleClaims = oauthtest.Claims{"scope": "orders:read orders:write"}

// scaleServe is one request with token through h; it returns the status.
func scaleServe(h http.Handler, token string) int {
	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// scaleAuth runs token through g.Authenticate without a recorder: how the
// caches are filled.
func scaleAuth(g *tokenguard.Guard, token string) error {
	r, err := http.NewRequest("GET", "http://resource.test/orders", nil)
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", "Bearer "+token)
	_, err = g.Authenticate(r)
	return err
}

// scaleParallel calls f(0) … f(n-1) on GOMAXPROCS goroutines.
func scaleParallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// scaleFill has g verify (and so cache) every token, on every core.
func scaleFill(g *tokenguard.Guard, toks []string) error {
	var first atomic.Pointer[error]
	scaleParallel(len(toks), func(i int) {
		if err := scaleAuth(g, toks[i]); err != nil {
			err = fmt.Errorf("token %d of %d: %w", i, len(toks), err)
			first.CompareAndSwap(nil, &err)
		}
	})
	if err := first.Load(); err != nil {
		return *err
	}
	return nil
}

// scaleMint mints n tokens with mint, on every core.
func scaleMint(n int, mint func() string) []string {
	toks := make([]string, n)
	scaleParallel(n, func(i int) { toks[i] = mint() })
	return toks
}

// scaleCap is a TokenCacheSize that holds n tokens with room to spare
// (today's equal shards fill unevenly), plus the few a benchmark adds.
func scaleCap(n int) int { return n + n/8 + 1024 }

// scaleGuard is a Guard for as; the caller closes it. The background
// key-set refresh is put off for an hour, so only what a benchmark
// does refreshes the keys.
func scaleGuard(b *testing.B, as *oauthtest.Server, cfg tokenguard.Config) *tokenguard.Guard {
	b.Helper()
	cfg.ResourceMetadataURL, cfg.InsecureAllowHTTP = as.ResourceMetadataURL(), true
	if cfg.KeyRefreshMin == 0 {
		cfg.KeyRefreshMin, cfg.KeyRefreshMax = time.Hour, time.Hour
	}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// heapNow is the live heap after a full collection.
func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// payloadLen is the decoded length of a JWS's payload.
func payloadLen(tok string) int {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return 0
	}
	return base64.RawURLEncoding.DecodedLen(len(parts[1]))
}

// paired runs one request per iteration through h and, back to back with
// it, the floor (when set) and the harness, each timed on its own (see
// BenchmarkFirstSightOverhead). next(i) is iteration i's token, made
// before the clocks start; next(0) is sent once before the loop, and every
// request must get its status (reported as the status metric), and want
// when want is not 0.
type paired struct {
	next  func(i int) string
	floor func() bool
	want  int
}

func (p paired) run(b *testing.B, h http.Handler) {
	b.Helper()
	status := scaleServe(h, p.next(0))
	if p.want != 0 && status != p.want {
		b.Fatalf("status %d, want %d", status, p.want)
	}
	var floor, request, harness time.Duration
	other, i := 0, 1
	b.ReportAllocs()
	for b.Loop() {
		tok := p.next(i)
		i++
		t0 := time.Now()
		if p.floor != nil && !p.floor() {
			b.Fatal("floor: signature does not verify")
		}
		t1 := time.Now()
		code := scaleServe(h, tok)
		t2 := time.Now()
		scaleServe(okHandler, tok)
		t3 := time.Now()
		floor, request, harness = floor+t1.Sub(t0), request+t2.Sub(t1), harness+t3.Sub(t2)
		if code != status {
			other++
		}
	}
	if other > 0 {
		b.Fatalf("%d of %d requests got another status than %d", other, i-1, status)
	}
	n := float64(i - 1)
	if p.floor != nil {
		b.ReportMetric(float64(floor)/n, "floor-ns/op")
		b.ReportMetric(float64(request-harness)/float64(floor), "checks-est")
	}
	b.ReportMetric(float64(request)/n, "request-ns/op")
	b.ReportMetric(float64(harness)/n, "harness-ns/op")
	b.ReportMetric(float64(request-floor-harness)/n, "beyond-ns/op")
	b.ReportMetric(float64(status), "status")
}

// The EdDSA server (the fastest to sign and verify) whose long-lived key
// signs the pools of distinct tokens, shared by the benchmarks that cache
// many tokens. BenchmarkScaleRotation publishes and retires other keys on
// it; the pool's key is never retired, and every token names its key.
var scaleEd struct {
	once sync.Once
	as   *oauthtest.Server
	kid  string

	mu   sync.Mutex
	pool []string
}

func scaleEdServer() (*oauthtest.Server, string) {
	scaleEd.once.Do(func() {
		// Tokens live a day: BenchmarkScaleRotation moves its guards'
		// clocks forward by hours in all.
		scaleEd.as = oauthtest.NewServer(oauthtest.Options{Algorithms: []string{"EdDSA"}, TokenLifetime: 24 * time.Hour})
		scaleEd.kid = scaleEd.as.KeyIDs()[0]
	})
	return scaleEd.as, scaleEd.kid
}

// scaleEdTokens returns n distinct tokens of the EdDSA server's pool,
// minting those it lacks.
func scaleEdTokens(n int) []string {
	as, kid := scaleEdServer()
	scaleEd.mu.Lock()
	defer scaleEd.mu.Unlock()
	if have := len(scaleEd.pool); have < n {
		more := scaleMint(n-have, func() string {
			return as.MintWith(oauthtest.MintOptions{KeyID: kid, Claims: scaleClaims})
		})
		scaleEd.pool = append(scaleEd.pool, more...)
	}
	return scaleEd.pool[:n:n]
}

// The RS256 server of BenchmarkScaleCacheHit's RS256 case,
// BenchmarkScaleTokenSize and BenchmarkScaleScopes, and its public key.
var scaleRS struct {
	once sync.Once
	as   *oauthtest.Server
	key  crypto.PublicKey
	err  error

	mu   sync.Mutex
	pool []string
}

func scaleRSServer(b *testing.B) (*oauthtest.Server, crypto.PublicKey) {
	scaleRS.once.Do(func() {
		as := oauthtest.NewServer(oauthtest.Options{Algorithms: []string{"RS256"}, TokenLifetime: 24 * time.Hour})
		set, err := jwks.New(context.Background(), as.JWKSURL(), jwks.Options{InsecureAllowHTTP: true})
		if err != nil {
			scaleRS.err = err
			return
		}
		defer set.Close()
		keys, err := set.Lookup(context.Background(), "", "RS256")
		if err != nil || len(keys) != 1 {
			scaleRS.err = fmt.Errorf("%d keys, %v", len(keys), err)
			return
		}
		scaleRS.as, scaleRS.key = as, keys[0].Public
	})
	if scaleRS.err != nil {
		b.Fatal(scaleRS.err)
	}
	return scaleRS.as, scaleRS.key
}

func scaleRSTokens(b *testing.B, n int) []string {
	as, _ := scaleRSServer(b)
	scaleRS.mu.Lock()
	defer scaleRS.mu.Unlock()
	if have := len(scaleRS.pool); have < n {
		scaleRS.pool = append(scaleRS.pool, scaleMint(n-have, func() string { return as.Mint(scaleClaims) })...)
	}
	return scaleRS.pool[:n:n]
}

// BenchmarkScaleHarness is the request, recorder and handler without
// tokenguard, with a token of the EdDSA pool: the baseline of the
// unpaired benchmarks (BenchmarkScaleParallel, BenchmarkScaleRotation).
func BenchmarkScaleHarness(b *testing.B) {
	tok := scaleEdTokens(1)[0]
	b.ReportAllocs()
	for b.Loop() {
		if scaleServe(okHandler, tok) != http.StatusOK {
			b.Fatal("harness: not 200")
		}
	}
}

// ---- Tokens without kid, and forged tokens, against many keys ----

// scaleNoKidKeys are 100 RSA keys. The first, the signer, has the
// smallest modulus: a signature below it is below every other modulus
// too, so each other key costs a full RSA operation (crypto/rsa refuses a
// signature at or above the modulus before any arithmetic), and the
// worst case of a kid-less token does not depend on the keys drawn.
var scaleNoKid struct {
	once sync.Once
	keys []*rsa.PrivateKey
	err  error
}

func scaleNoKidKeys(b *testing.B) []*rsa.PrivateKey {
	scaleNoKid.once.Do(func() {
		keys := make([]*rsa.PrivateKey, 100)
		var failed atomic.Bool
		scaleParallel(len(keys), func(i int) {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				failed.Store(true)
				return
			}
			keys[i] = k
		})
		if failed.Load() {
			scaleNoKid.err = errors.New("generating RSA keys failed")
			return
		}
		slices.SortFunc(keys, func(x, y *rsa.PrivateKey) int { return x.N.Cmp(y.N) })
		scaleNoKid.keys = keys
	})
	if scaleNoKid.err != nil {
		b.Fatal(scaleNoKid.err)
	}
	return scaleNoKid.keys
}

func scaleKid(i int) string { return fmt.Sprintf("scale-rsa-%02d", i) }

// rsaJWK is pub as an RS256 signing JWK.
func rsaJWK(pub *rsa.PublicKey, kid string) map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	return map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
}

// decodeClaims is the claims set of tok (numbers kept as written).
func decodeClaims(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWS")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var c map[string]any
	return c, dec.Decode(&c)
}

// forger makes tokens an attacker would send: a well-formed header and
// claims set and a signature that verifies with no key, with the
// signature's first byte 0 so that every RSA key does its full
// operation. token(i) differs from token(j) in the jti only; making one
// costs an encoding of 18 bytes and a copy, not an encoding of the token.
type forger struct {
	buf []byte // the token; buf[off:off+24] encodes the 18 digits ending the jti
	off int
}

func newForger(header, claims map[string]any, sigLen int) (*forger, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return nil, err
	}
	const mark = "999999999999999999" // 18 digits: 24 characters of base64
	c := maps.Clone(claims)
	c["jti"] = "forged-" + mark
	js, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	// Prefix the digits so they start at a multiple of 3 in the JSON: then
	// they are 24 characters of their own in the base64.
	pad := (3 - bytes.Index(js, []byte(mark))%3) % 3
	c["jti"] = "forged-" + strings.Repeat("f", pad) + mark
	if js, err = json.Marshal(c); err != nil {
		return nil, err
	}
	p := bytes.Index(js, []byte(mark))
	if p%3 != 0 {
		return nil, errors.New("forger: digits not aligned")
	}
	sig := make([]byte, sigLen)
	_, _ = rand.Read(sig[1:])
	b64 := base64.RawURLEncoding.EncodeToString
	hb := b64(h)
	tok := hb + "." + b64(js) + "." + b64(sig)
	f := &forger{buf: []byte(tok), off: len(hb) + 1 + p/3*4}
	for _, i := range []uint64{0, 123456789} {
		got, err := decodeClaims(f.token(i))
		if want := fmt.Sprintf("forged-%s%018d", strings.Repeat("f", pad), i); err != nil || got["jti"] != want {
			return nil, fmt.Errorf("forger: jti %v, want %s (%v)", got["jti"], want, err)
		}
	}
	return f, nil
}

func (f *forger) token(i uint64) string {
	var d [18]byte
	for k := len(d) - 1; k >= 0; k-- {
		d[k] = '0' + byte(i%10)
		i /= 10
	}
	base64.RawURLEncoding.Encode(f.buf[f.off:f.off+24], d[:])
	return string(f.buf)
}

// noKidEnv is a server whose JWK Set is k RS256 keys, the signer last,
// with a guard without cache (cold) and one with the default cache
// (warm).
type noKidEnv struct {
	as         *oauthtest.Server
	cold, warm *tokenguard.Guard
	valid      [2]string  // signed by the signer; [0] without kid, [1] with the signer's kid
	forge      [2]*forger // the same, with signatures that verify with no key
	floor      func() bool
}

func (e *noKidEnv) close() {
	e.cold.Close()
	e.warm.Close()
	e.as.Close()
}

func newNoKidEnv(b *testing.B, k int) *noKidEnv {
	b.Helper()
	keys := scaleNoKidKeys(b)
	as := oauthtest.NewServer(oauthtest.Options{Algorithms: []string{"EdDSA"}, TokenLifetime: 24 * time.Hour})
	claims, err := decodeClaims(as.Mint(scaleClaims)) // oauthtest's default claims
	if err != nil {
		b.Fatal(err)
	}
	for _, kid := range as.KeyIDs() {
		as.RetireKey(kid)
	}
	for i := k - 1; i >= 0; i-- { // the signer, keys[0], last
		as.PublishExtraKey(rsaJWK(&keys[i].PublicKey, scaleKid(i)))
	}
	e := &noKidEnv{as: as}
	cfg := tokenguard.Config{Algorithms: []string{"RS256"}, TokenCacheSize: -1}
	e.cold = scaleGuard(b, as, cfg)
	cfg.TokenCacheSize = 0
	e.warm = scaleGuard(b, as, cfg)
	for j, header := range []map[string]any{
		{"alg": "RS256", "typ": "at+jwt"},
		{"alg": "RS256", "typ": "at+jwt", "kid": scaleKid(0)},
	} {
		if e.valid[j], err = oauthtest.SignJWT(header, claims, keys[0], "RS256"); err != nil {
			b.Fatal(err)
		}
		if e.forge[j], err = newForger(header, claims, keys[0].Size()); err != nil {
			b.Fatal(err)
		}
		// The forged token must reach the signature check, not be refused
		// as malformed.
		err := scaleAuth(e.cold, e.forge[j].token(0))
		if err == nil || errors.Is(err, tokenguard.ReasonTokenMalformed) {
			b.Fatalf("forged token: %v", err)
		}
	}
	if err := scaleAuth(e.cold, e.valid[1]); err != nil {
		b.Fatalf("valid token with kid: %v", err)
	}
	e.floor = bareVerifier(b, e.valid[1], &keys[0].PublicKey)
	return e
}

// BenchmarkScaleNoKid is one request whose token's kid is absent (kid=no)
// or names its key (kid=yes), against a JWK Set of 1, 10 or 100 RS256
// keys in which the signer comes last: a valid token seen for the first
// time (the cache off), a forged token (a signature that verifies with no
// key) sent again and again, and forged tokens all different (the cache
// on, as by default). checks-est is (request − harness) / floor: about how
// many signature checks the request cost. A guard that refuses a valid
// token without kid among many keys does what the issue asks: status says
// which it did. floor is one RS256 verification alone.
func BenchmarkScaleNoKid(b *testing.B) {
	b.Run("floor", func(b *testing.B) {
		keys := scaleNoKidKeys(b)
		tok, err := oauthtest.SignJWT(map[string]any{"alg": "RS256"}, map[string]any{"sub": "x"}, keys[0], "RS256")
		if err != nil {
			b.Fatal(err)
		}
		verify := bareVerifier(b, tok, &keys[0].PublicKey)
		b.ReportAllocs()
		for b.Loop() {
			if !verify() {
				b.Fatal("signature does not verify")
			}
		}
	})
	for _, k := range []int{1, 10, 100} {
		var e *noKidEnv
		env := func(b *testing.B) *noKidEnv {
			if e == nil {
				e = newNoKidEnv(b, k)
			}
			return e
		}
		for j, kid := range []string{"no", "yes"} {
			prefix := fmt.Sprintf("keys=%d/kid=%s/", k, kid)
			b.Run(prefix+"valid", func(b *testing.B) {
				e := env(b)
				paired{next: func(int) string { return e.valid[j] }, floor: e.floor}.run(b, e.cold.Handler(okHandler))
			})
			b.Run(prefix+"forged-same", func(b *testing.B) {
				e := env(b)
				tok := e.forge[j].token(0)
				paired{next: func(int) string { return tok }, floor: e.floor, want: http.StatusUnauthorized}.run(b, e.warm.Handler(okHandler))
			})
			b.Run(prefix+"forged-distinct", func(b *testing.B) {
				e := env(b)
				var seq atomic.Uint64 // distinct across runs too
				seq.Store(1 << 40)
				paired{next: func(int) string { return e.forge[j].token(seq.Add(1)) }, floor: e.floor, want: http.StatusUnauthorized}.run(b, e.warm.Handler(okHandler))
			})
		}
		if e != nil {
			e.close()
		}
	}
}

// ---- Cache hits and memory at 10k–1M cached tokens ----

// hitEnv is a guard holding toks, and what the tokens cost it in memory.
type hitEnv struct {
	g    *tokenguard.Guard
	toks []string
	// perToken is the live heap the guard added (New and the fill) per
	// cached token; fillPerToken counts only the fill. The tokens' own
	// strings were allocated before either was measured.
	perToken, fillPerToken float64
}

func newHitEnv(b *testing.B, as *oauthtest.Server, toks []string) *hitEnv {
	b.Helper()
	base := heapNow()
	g := scaleGuard(b, as, tokenguard.Config{TokenCacheSize: scaleCap(len(toks))})
	empty := heapNow()
	if err := scaleFill(g, toks); err != nil {
		g.Close()
		b.Fatal(err)
	}
	full := heapNow()
	if st := g.TokenCacheStats(); st.Evictions != 0 {
		g.Close()
		b.Fatalf("%d evictions filling %d tokens into a cache of %d", st.Evictions, len(toks), scaleCap(len(toks)))
	}
	n := float64(len(toks))
	return &hitEnv{g: g, toks: toks,
		perToken:     (float64(full) - float64(base)) / n,
		fillPerToken: (float64(full) - float64(empty)) / n,
	}
}

// bench times hits on tokens drawn at random from the cached ones.
func (e *hitEnv) bench(b *testing.B) {
	rng := mrand.New(mrand.NewPCG(uint64(len(e.toks)), 15))
	before := e.g.TokenCacheStats()
	paired{next: func(int) string { return e.toks[rng.IntN(len(e.toks))] }, want: http.StatusOK}.run(b, e.g.Handler(okHandler))
	if st := e.g.TokenCacheStats(); st.Misses != before.Misses {
		b.Fatalf("%d cache misses: not every request was a hit", st.Misses-before.Misses)
	}
	if len(e.toks) >= 10_000 {
		b.ReportMetric(e.perToken, "B/token")
		b.ReportMetric(e.fillPerToken, "fill-B/token")
	}
	b.ReportMetric(float64(payloadLen(e.toks[0])), "payload-B")
	b.ReportMetric(float64(len(e.toks[0])), "token-B")
}

// BenchmarkScaleCacheHit is a cache hit on a token drawn at random from N
// distinct cached tokens (paired with the harness: beyond-ns/op is the
// guard's own cost), and what the cache holds per token: B/token is the
// live heap the guard added from before New to after the fill, divided
// by N (fill-B/token leaves New out), against payload-B, the token's
// decoded claims. EdDSA at 1, 10k, 100k (1M with TOKENGUARD_BENCH_1M=1),
// RS256 at 10k.
func BenchmarkScaleCacheHit(b *testing.B) {
	as, _ := scaleEdServer()
	for _, n := range append([]int{1}, scaleCounts()...) {
		var e *hitEnv
		b.Run("alg=EdDSA/cached="+countName(n), func(b *testing.B) {
			if e == nil {
				e = newHitEnv(b, as, scaleEdTokens(n))
			}
			e.bench(b)
		})
		if e != nil {
			e.g.Close()
			e = nil
		}
	}
	var e *hitEnv
	b.Run("alg=RS256/cached=10k", func(b *testing.B) {
		if e == nil {
			rs, _ := scaleRSServer(b)
			e = newHitEnv(b, rs, scaleRSTokens(b, 10_000))
		}
		e.bench(b)
	})
	if e != nil {
		e.g.Close()
	}
}

// BenchmarkScaleParallel is BenchmarkScaleCacheHit at 10k cached EdDSA
// tokens, serial and on every core (RunParallel), unpaired, with the
// harness alike: parallel ns/op ÷ serial ns/op near 1/GOMAXPROCS means
// hits do not contend.
func BenchmarkScaleParallel(b *testing.B) {
	as, _ := scaleEdServer()
	var e *hitEnv
	env := func(b *testing.B) *hitEnv {
		if e == nil {
			e = newHitEnv(b, as, scaleEdTokens(10_000))
		}
		return e
	}
	var seed atomic.Uint64
	serial := func(handler func(*hitEnv) http.Handler) func(*testing.B) {
		return func(b *testing.B) {
			e := env(b)
			h := handler(e)
			rng := mrand.New(mrand.NewPCG(seed.Add(1), 15))
			bad := 0
			b.ReportAllocs()
			for b.Loop() {
				if scaleServe(h, e.toks[rng.IntN(len(e.toks))]) != http.StatusOK {
					bad++
				}
			}
			if bad > 0 {
				b.Fatalf("%d requests not 200", bad)
			}
		}
	}
	parallel := func(handler func(*hitEnv) http.Handler) func(*testing.B) {
		return func(b *testing.B) {
			e := env(b)
			h := handler(e)
			var bad atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rng := mrand.New(mrand.NewPCG(seed.Add(1), 15))
				n := 0
				for pb.Next() {
					if scaleServe(h, e.toks[rng.IntN(len(e.toks))]) != http.StatusOK {
						n++
					}
				}
				bad.Add(int64(n))
			})
			if n := bad.Load(); n > 0 {
				b.Fatalf("%d requests not 200", n)
			}
		}
	}
	guard := func(e *hitEnv) http.Handler { return e.g.Handler(okHandler) }
	harness := func(*hitEnv) http.Handler { return okHandler }
	b.Run("cached=10k/serial", serial(guard))
	b.Run("cached=10k/parallel", parallel(guard))
	b.Run("harness/serial", serial(harness))
	b.Run("harness/parallel", parallel(harness))
	if e != nil {
		e.g.Close()
	}
}

// ---- Key-set refreshes with many cached tokens ----

// scaleClock is time.Now moved forward at will: a refresh caused by an
// unknown kid is allowed once per UnknownKeyCooldown of this clock.
type scaleClock struct{ ahead atomic.Int64 }

func (c *scaleClock) Now() time.Time          { return time.Now().Add(time.Duration(c.ahead.Load())) }
func (c *scaleClock) advance(d time.Duration) { c.ahead.Add(int64(d)) }
func (e *rotEnv) mint(kid string) string {
	return e.as.MintWith(oauthtest.MintOptions{KeyID: kid, Claims: scaleClaims})
}
func (e *rotEnv) mintN(kid string, n int) []string {
	return scaleMint(n, func() string { return e.mint(kid) })
}

const (
	// scaleCooldown is the guards' UnknownKeyCooldown: longer than an
	// iteration takes, so nothing but the timed request refreshes the
	// keys; scaleStep, by which each iteration moves the clock, is longer
	// still, so that request does.
	scaleCooldown = 10 * time.Second
	scaleStep     = 30 * time.Second
	// scaleVictims are the tokens of the key a refresh retires.
	scaleVictims = 100
	// scaleMaxRotating bounds the keys "add" lets pile up before an
	// untimed reset, so its key set stays near retire's two keys and the
	// fetch and parse cost alike.
	scaleMaxRotating = 4
	// scaleProbeTail is how long the probe of retire-probe goes on after
	// the refresh request returned (for work a refresh leaves behind).
	scaleProbeTail = 100 * time.Millisecond
)

// rotEnv is a guard holding n bystander tokens of the EdDSA pool's key,
// on a clock of its own, and the rotating keys published beside that key.
type rotEnv struct {
	as         *oauthtest.Server
	g          *tokenguard.Guard
	h          http.Handler
	clock      *scaleClock
	added      []string // rotating keys published now, the newest last; the guard knows all but possibly the newest
	bystanders []string
}

func newRotEnv(b *testing.B, n int) *rotEnv {
	b.Helper()
	as, _ := scaleEdServer()
	e := &rotEnv{as: as, clock: new(scaleClock), bystanders: scaleEdTokens(n)}
	e.g = scaleGuard(b, as, tokenguard.Config{
		TokenCacheSize:     scaleCap(n),
		UnknownKeyCooldown: scaleCooldown,
		Now:                e.clock.Now,
	})
	e.h = e.g.Handler(okHandler)
	if err := scaleFill(e.g, e.bystanders); err != nil {
		e.g.Close()
		b.Fatal(err)
	}
	e.reset(b)
	return e
}

// rotate publishes a new key, after retiring every rotating key when
// retire is set, moves the clock past the cooldown and returns a token
// signed by the new key, whose kid the guard has not seen.
func (e *rotEnv) rotate(retire bool) string {
	next := e.as.RotateKey("EdDSA")
	if retire {
		for _, kid := range e.added {
			e.as.RetireKey(kid)
		}
		e.added = e.added[:0]
	}
	e.added = append(e.added, next)
	e.clock.advance(scaleStep)
	return e.mint(next)
}

// reset leaves one rotating key, known to the guard, through a refresh
// that is not timed.
func (e *rotEnv) reset(b *testing.B) {
	b.Helper()
	if code := scaleServe(e.h, e.rotate(true)); code != http.StatusOK {
		b.Fatalf("status %d: the unknown kid brought no refresh", code)
	}
}

// probe sends cache hits through h on its own goroutine until stopped and
// keeps the slowest.
type probe struct {
	stop    atomic.Bool
	done    chan struct{}
	slowest time.Duration
	hits    int
	bad     int
}

func startProbe(h http.Handler, toks []string, seed uint64) *probe {
	p := &probe{done: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		defer close(p.done)
		rng := mrand.New(mrand.NewPCG(seed, 15))
		close(started)
		for !p.stop.Load() {
			tok := toks[rng.IntN(len(toks))]
			t0 := time.Now()
			code := scaleServe(h, tok)
			d := time.Since(t0)
			p.slowest = max(p.slowest, d)
			p.hits++
			if code != http.StatusOK {
				p.bad++
			}
		}
	}()
	<-started
	return p
}

func (p *probe) end() {
	p.stop.Store(true)
	<-p.done
}

// BenchmarkScaleRotation is the latency of the one request whose unknown
// kid makes the guard fetch the key set, with N bystander tokens cached
// (signed by a key that stays): "retire", a refresh in which the previous
// key leaves the set (its 100 cached tokens, the victims, must stop
// working: stale-accepted is the fraction of iterations in which one was
// still accepted after the refresh); "add", a refresh in which a key is
// only added; "retire-probe", retire while another goroutine sends cache
// hits from just before the request until 100 ms after it returned
// (probe-max-ns: the mean over iterations of the slowest hit). cached=0
// is the cost of the fetch itself. The key set holds 2 keys after a
// retire and 2 to 5 after an add. Run with -benchtime=20x.
func BenchmarkScaleRotation(b *testing.B) {
	for _, n := range append([]int{0}, scaleCounts()...) {
		var e *rotEnv
		env := func(b *testing.B) *rotEnv {
			if e == nil {
				e = newRotEnv(b, n)
			}
			return e
		}
		modes := []string{"retire", "add", "retire-probe"}
		if n == 0 {
			modes = modes[:2]
		}
		for _, mode := range modes {
			b.Run(fmt.Sprintf("cached=%s/%s", countName(n), mode), func(b *testing.B) {
				e := env(b)
				e.reset(b)
				stale, iters := 0, 0
				var slowest time.Duration
				var probeHits int
				for b.Loop() {
					b.StopTimer()
					var victims []string
					var tok string
					if mode == "add" {
						if len(e.added) >= scaleMaxRotating {
							e.reset(b)
						}
						tok = e.rotate(false)
					} else {
						victims = e.mintN(e.added[len(e.added)-1], scaleVictims)
						if err := scaleFill(e.g, victims); err != nil {
							b.Fatal(err)
						}
						tok = e.rotate(true)
					}
					var p *probe
					if mode == "retire-probe" {
						p = startProbe(e.h, e.bystanders, uint64(iters))
					}
					b.StartTimer()
					code := scaleServe(e.h, tok)
					b.StopTimer()
					if p != nil {
						time.Sleep(scaleProbeTail)
						p.end()
						if p.bad > 0 {
							b.Fatalf("probe: %d of %d hits not 200", p.bad, p.hits)
						}
						slowest += p.slowest
						probeHits += p.hits
					}
					if code != http.StatusOK {
						b.Fatalf("status %d: the unknown kid brought no refresh", code)
					}
					if victims != nil && scaleServe(e.h, victims[0]) == http.StatusOK {
						stale++
					}
					iters++
					b.StartTimer()
				}
				if mode != "add" {
					b.ReportMetric(float64(stale)/float64(iters), "stale-accepted")
				}
				if mode == "retire-probe" {
					b.ReportMetric(float64(slowest)/float64(iters), "probe-max-ns")
					b.ReportMetric(float64(probeHits)/float64(iters), "probe-hits")
				}
			})
		}
		if e != nil {
			e.g.Close()
			e = nil
		}
	}
}

// ---- Large tokens and scope lists ----

// scopeWords is " p00001 p00002 …", exactly m bytes.
func scopeWords(m int) string {
	var sb strings.Builder
	for i := 1; sb.Len()+7 <= m; i++ {
		fmt.Fprintf(&sb, " p%05d", i)
	}
	switch r := m - sb.Len(); {
	case r == 1:
		sb.WriteString("z")
	case r > 1:
		sb.WriteString(" " + strings.Repeat("z", r-1))
	}
	return sb.String()
}

// scaleSized mints count distinct RS256 tokens of at most size bytes (and
// at least size − 3), padded in an unread claim (pad "claim") or with
// scope values (pad "scope").
func scaleSized(b *testing.B, size int, pad string, count int) []string {
	b.Helper()
	as, _ := scaleRSServer(b)
	claims := func(m int) oauthtest.Claims {
		c := maps.Clone(scaleClaims)
		if pad == "claim" {
			c["pad"] = strings.Repeat("x", m)
		} else {
			c["scope"] = c["scope"].(string) + scopeWords(m)
		}
		return c
	}
	base := as.Mint(claims(0))
	parts := strings.Split(base, ".")
	fixed := len(parts[0]) + len(parts[2]) + 2
	m := (size-fixed)*3/4 - payloadLen(base)
	toks := scaleMint(count, func() string { return as.Mint(claims(m)) })
	for _, t := range toks {
		if len(t) > size || len(t) < size-3 {
			b.Fatalf("token of %d bytes, want %d", len(t), size)
		}
	}
	return toks
}

// sizeEnv is the three guards of BenchmarkScaleTokenSize and
// BenchmarkScaleScopes, all with MaxTokenBytes 64 KiB: cold (no cache),
// small (a cache of 8, so a pool of 128 tokens is all misses) and warm
// (the default cache).
type sizeEnv struct {
	cold, small, warm *tokenguard.Guard
	key               crypto.PublicKey
}

func newSizeEnv(b *testing.B) *sizeEnv {
	as, key := scaleRSServer(b)
	e := &sizeEnv{key: key}
	e.cold = scaleGuard(b, as, tokenguard.Config{TokenCacheSize: -1, MaxTokenBytes: 64 << 10})
	e.small = scaleGuard(b, as, tokenguard.Config{TokenCacheSize: 8, MaxTokenBytes: 64 << 10})
	e.warm = scaleGuard(b, as, tokenguard.Config{MaxTokenBytes: 64 << 10})
	b.Cleanup(func() { e.cold.Close(); e.small.Close(); e.warm.Close() })
	return e
}

// benchShapes runs first (cache off), new (cache on, each request a token
// it does not hold) and hit on pool, 128 distinct tokens of one shape,
// under prefix.
func (e *sizeEnv) benchShapes(b *testing.B, prefix string, pool func(b *testing.B) []string) {
	var toks []string
	get := func(b *testing.B) []string {
		if toks == nil {
			toks = pool(b)
		}
		return toks
	}
	report := func(b *testing.B, tok string) {
		b.ReportMetric(float64(len(tok)), "token-B")
		b.ReportMetric(float64(payloadLen(tok)), "payload-B")
	}
	b.Run(prefix+"/first", func(b *testing.B) {
		tok := get(b)[0]
		paired{next: func(int) string { return tok }, floor: bareVerifier(b, tok, e.key), want: http.StatusOK}.run(b, e.cold.Handler(okHandler))
		report(b, tok)
	})
	cursor := 0 // where the cycle is, across runs: a run never starts on a token the last one sent
	b.Run(prefix+"/new", func(b *testing.B) {
		toks := get(b)
		before := e.small.TokenCacheStats()
		next := func(int) string {
			cursor++
			return toks[cursor%len(toks)]
		}
		paired{next: next, floor: bareVerifier(b, toks[0], e.key), want: http.StatusOK}.run(b, e.small.Handler(okHandler))
		if st := e.small.TokenCacheStats(); st.Hits != before.Hits {
			b.Fatalf("%d cache hits: the pool is not cycling through misses", st.Hits-before.Hits)
		}
		report(b, toks[0])
	})
	b.Run(prefix+"/hit", func(b *testing.B) {
		tok := get(b)[1]
		before := e.warm.TokenCacheStats()
		paired{next: func(int) string { return tok }, want: http.StatusOK}.run(b, e.warm.Handler(okHandler))
		if st := e.warm.TokenCacheStats(); st.Misses-before.Misses > 1 {
			b.Fatalf("%d cache misses", st.Misses-before.Misses)
		}
		report(b, tok)
	})
}

// BenchmarkScaleTokenSize is a token of 1, 4 or 16 KB (MaxTokenBytes
// 64 KiB) padded in a claim nobody reads (pad=claim) or with scope values
// (pad=scope): first sight (paired with the floor: beyond-ns/op is the
// guard's own cost), first sight with the cache on (new) and a cache hit.
// default-limit is the default MaxTokenBytes facing a token of 16.8 KB
// and one of 64 KiB: status says whether it admits them (the requests
// then are cache hits).
func BenchmarkScaleTokenSize(b *testing.B) {
	e := newSizeEnv(b)
	for _, pad := range []string{"claim", "scope"} {
		for _, size := range []int{1 << 10, 4 << 10, 16 << 10} {
			e.benchShapes(b, fmt.Sprintf("pad=%s/size=%dk", pad, size>>10), func(b *testing.B) []string { return scaleSized(b, size, pad, 128) })
		}
	}
	as, _ := scaleRSServer(b)
	def := scaleGuard(b, as, tokenguard.Config{})
	b.Cleanup(func() { def.Close() })
	for _, c := range []struct {
		name string
		size int
	}{{"16.8k", 16_800}, {"64KiB", 64 << 10}} {
		b.Run("default-limit/size="+c.name, func(b *testing.B) {
			tok := scaleSized(b, c.size, "claim", 1)[0]
			paired{next: func(int) string { return tok }}.run(b, def.Handler(okHandler))
			b.ReportMetric(float64(len(tok)), "token-B")
		})
	}
}

// BenchmarkScaleScopes is a token with 1,000 scope values against one
// with 3, as in BenchmarkScaleTokenSize: first sight, first sight with
// the cache on, and a cache hit (whose B/op shows whether a hit copies the
// list).
func BenchmarkScaleScopes(b *testing.B) {
	e := newSizeEnv(b)
	as, _ := scaleRSServer(b)
	for _, n := range []int{3, 1000} {
		scope := "orders:read orders:write profile"
		if n > 3 {
			var sb strings.Builder
			sb.WriteString("orders:read orders:write")
			for i := 3; i <= n; i++ {
				fmt.Fprintf(&sb, " api:%04d", i)
			}
			scope = sb.String()
		}
		if got := len(strings.Fields(scope)); got != n {
			b.Fatalf("%d scopes, want %d", got, n)
		}
		e.benchShapes(b, fmt.Sprintf("scopes=%d", n), func(*testing.B) []string {
			return scaleMint(128, func() string { return as.Mint(oauthtest.Claims{"scope": scope}) })
		})
	}
}

// ---- Capacity ----

// BenchmarkScaleCapacity fills a guard with TokenCacheSize = size with
// exactly size distinct tokens (a new guard each iteration; ns/op is the
// whole fill, on every core) and reports what it then holds ("held",
// TokenCacheStats().Entries) and the evictions the fill caused
// ("evicted"): a cache that holds its configured capacity reports
// held = size, evicted = 0. Run with -benchtime=3x.
func BenchmarkScaleCapacity(b *testing.B) {
	as, _ := scaleEdServer()
	for _, size := range []int{1_000, 10_000} {
		b.Run("size="+countName(size), func(b *testing.B) {
			toks := scaleEdTokens(size)
			var st tokenguard.TokenCacheStats
			for b.Loop() {
				b.StopTimer()
				g := scaleGuard(b, as, tokenguard.Config{TokenCacheSize: size})
				b.StartTimer()
				err := scaleFill(g, toks)
				b.StopTimer()
				st = g.TokenCacheStats()
				g.Close()
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(st.Entries), "held")
			b.ReportMetric(float64(st.Evictions), "evicted")
		})
	}
}
