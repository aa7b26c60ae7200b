package bench_test

import (
	"context"
	"crypto"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/bench"
	"github.com/tokenguard/tokenguard/jwks"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// algs are the algorithms measured, one key each.
var algs = []string{"RS256", "ES256", "EdDSA"}

// env is what every benchmark shares: one authorization server, the tokens
// it minted once, the public keys for the floor, and every library set up
// against it and warmed up (key set fetched, one request per alg accepted).
type env struct {
	as     *oauthtest.Server
	target bench.Target
	tokens map[string]string           // by alg
	keys   map[string]crypto.PublicKey // by alg
	libs   []*bench.Lib                // tokenguard-first, tokenguard-repeat, then the peers
	// handlers[lib name][alg] protects bench.OK.
	handlers map[string]map[string]http.Handler
}

var (
	envOnce   sync.Once
	sharedEnv *env
	envErr    error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedEnv != nil {
		sharedEnv.close()
	}
	os.Exit(code)
}

// getEnv builds the shared environment on first use.
func getEnv(tb testing.TB) *env {
	tb.Helper()
	envOnce.Do(func() { sharedEnv, envErr = newEnv() })
	if envErr != nil {
		tb.Fatal(envErr)
	}
	return sharedEnv
}

func targetOf(as *oauthtest.Server, algs []string) bench.Target {
	return bench.Target{JWKSURL: as.JWKSURL(), Issuer: as.Issuer, Audience: as.Resource(), Algorithms: algs}
}

func newEnv() (e *env, err error) {
	ctx := context.Background()
	e = &env{
		as:       oauthtest.NewServer(oauthtest.Options{Algorithms: algs}),
		tokens:   map[string]string{},
		keys:     map[string]crypto.PublicKey{},
		handlers: map[string]map[string]http.Handler{},
	}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	e.target = targetOf(e.as, algs)
	set, err := jwks.New(ctx, e.as.JWKSURL(), jwks.Options{InsecureAllowHTTP: true})
	if err != nil {
		return nil, err
	}
	defer set.Close()
	for _, alg := range algs {
		e.tokens[alg] = e.as.MintWith(oauthtest.MintOptions{Alg: alg, Claims: oauthtest.Claims{"scope": "orders:read orders:write"}})
		keys, err := set.Lookup(ctx, "", alg)
		if err != nil || len(keys) != 1 {
			return nil, fmt.Errorf("%s: %d keys, %v", alg, len(keys), err)
		}
		e.keys[alg] = keys[0].Public
	}

	add := func(l *bench.Lib, err error) error {
		if err != nil {
			return err
		}
		e.libs = append(e.libs, l)
		return nil
	}
	if err := add(bench.Tokenguard(ctx, e.target, bench.NameTokenguardFirst, tokenguard.Config{TokenCacheSize: -1})); err != nil {
		return nil, err
	}
	if err := add(bench.Tokenguard(ctx, e.target, bench.NameTokenguardRepeat, tokenguard.Config{})); err != nil {
		return nil, err
	}
	for _, p := range bench.Peers {
		if err := add(p.New(ctx, e.target)); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	// Warm up: each library fetches the key set (and tokenguard-repeat
	// caches the token) before anything is timed.
	for _, l := range e.libs {
		e.handlers[l.Name] = map[string]http.Handler{}
		for _, alg := range algs {
			h := l.Handler(alg, bench.OK)
			if code := serve(h, e.tokens[alg]); code != http.StatusOK {
				return nil, fmt.Errorf("%s/%s: warm-up answered %d", l.Name, alg, code)
			}
			e.handlers[l.Name][alg] = h
		}
	}
	return e, nil
}

func (e *env) close() {
	for _, l := range e.libs {
		l.Close()
	}
	e.as.Close()
}

// serve is one request with token through h: the harness every library is
// measured in. It returns the status.
func serve(h http.Handler, token string) int {
	r := httptest.NewRequest(http.MethodGet, "/orders", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// percentile returns the nearest-rank p-th percentile of sorted ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := (len(ds)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return ds[i-1]
}

func sortDurations(ds []time.Duration) {
	slices.Sort(ds)
}
