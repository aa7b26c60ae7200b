package bench_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard/bench"
)

// Benchmark names: BenchmarkVerify/<lib>/<alg> and
// BenchmarkVerifyParallel/<lib>/<alg>, where lib is one of
//
//	floor              crypto/* alone: hash and verify the token's signature
//	harness            httptest request + recorder + a handler reading the header
//	tokenguard-first   Guard.Handler, verified-token cache off (full verification)
//	tokenguard-repeat  Guard.Handler, default config (verified-token cache hit)
//	golang-jwt-keyfunc, go-oidc, auth0, jwx   the peers (see libs.go)
//
// Every library sees the same token per alg, from the same server, with its
// key set fetched before timing starts; every iteration checks the answer
// was 200 (the floor: that the signature verified).
const (
	nameFloor   = "floor"
	nameHarness = "harness"
)

func BenchmarkVerify(b *testing.B) {
	e := getEnv(b)
	b.Run(nameFloor, func(b *testing.B) {
		for _, alg := range algs {
			verify := floorVerifier(b, e.keys[alg], e.tokens[alg])
			b.Run(alg, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if !verify() {
						b.Fatal("signature does not verify")
					}
				}
			})
		}
	})
	b.Run(nameHarness, func(b *testing.B) {
		for _, alg := range algs {
			benchServe(b, alg, bench.OK, e.tokens[alg])
		}
	})
	for _, l := range e.libs {
		b.Run(l.Name, func(b *testing.B) {
			for _, alg := range algs {
				benchServe(b, alg, e.handlers[l.Name][alg], e.tokens[alg])
			}
		})
	}
}

func BenchmarkVerifyParallel(b *testing.B) {
	e := getEnv(b)
	b.Run(nameFloor, func(b *testing.B) {
		for _, alg := range algs {
			verify := floorVerifier(b, e.keys[alg], e.tokens[alg])
			b.Run(alg, func(b *testing.B) {
				b.ReportAllocs()
				var failed atomic.Bool
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if !verify() {
							failed.Store(true)
							return
						}
					}
				})
				if failed.Load() {
					b.Fatal("signature does not verify")
				}
			})
		}
	})
	b.Run(nameHarness, func(b *testing.B) {
		for _, alg := range algs {
			benchServeParallel(b, alg, bench.OK, e.tokens[alg])
		}
	})
	for _, l := range e.libs {
		b.Run(l.Name, func(b *testing.B) {
			for _, alg := range algs {
				benchServeParallel(b, alg, e.handlers[l.Name][alg], e.tokens[alg])
			}
		})
	}
}

// BenchmarkOverhead/<lib>/<alg> is what "beyond floor + harness" means,
// measured rather than subtracted: each iteration times the floor, one
// request through lib and the harness alone back to back, so a slow
// minute on a shared machine slows all three instead of whichever
// benchmark happened to run in it. It reports the means as floor-ns/op,
// lib-ns/op and harness-ns/op, and beyond-ns/op = lib − floor − harness;
// ns/op is the three together. The floor and harness run among the
// library's allocations here, so they read a little higher than alone.
func BenchmarkOverhead(b *testing.B) {
	e := getEnv(b)
	for _, l := range e.libs {
		b.Run(l.Name, func(b *testing.B) {
			for _, alg := range algs {
				verify := floorVerifier(b, e.keys[alg], e.tokens[alg])
				h, tok := e.handlers[l.Name][alg], e.tokens[alg]
				b.Run(alg, func(b *testing.B) {
					b.ReportAllocs()
					var floor, lib, harness time.Duration
					for b.Loop() {
						t0 := time.Now()
						ok := verify()
						t1 := time.Now()
						code := serve(h, tok)
						t2 := time.Now()
						hcode := serve(bench.OK, tok)
						t3 := time.Now()
						if !ok || code != http.StatusOK || hcode != http.StatusOK {
							b.Fatalf("floor verified: %v; status %d, harness %d", ok, code, hcode)
						}
						floor, lib, harness = floor+t1.Sub(t0), lib+t2.Sub(t1), harness+t3.Sub(t2)
					}
					n := float64(b.N)
					b.ReportMetric(float64(floor)/n, "floor-ns/op")
					b.ReportMetric(float64(lib)/n, "lib-ns/op")
					b.ReportMetric(float64(harness)/n, "harness-ns/op")
					b.ReportMetric(float64(lib-floor-harness)/n, "beyond-ns/op")
				})
			}
		})
	}
}

func benchServe(b *testing.B, alg string, h http.Handler, token string) {
	b.Run(alg, func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if code := serve(h, token); code != http.StatusOK {
				b.Fatalf("status %d", code)
			}
		}
	})
}

func benchServeParallel(b *testing.B, alg string, h http.Handler, token string) {
	b.Run(alg, func(b *testing.B) {
		b.ReportAllocs()
		var bad atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if code := serve(h, token); code != http.StatusOK {
					bad.Store(int64(code))
					return
				}
			}
		})
		if code := bad.Load(); code != 0 {
			b.Fatalf("status %d", code)
		}
	})
}

// floorVerifier returns the bare check of token's signature with key: the
// SHA-256 of the signing input and the crypto/* verification, nothing else
// (the same as the core's BenchmarkBareVerify).
func floorVerifier(tb testing.TB, key crypto.PublicKey, token string) func() bool {
	tb.Helper()
	i := strings.LastIndexByte(token, '.')
	input := []byte(token[:i])
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil {
		tb.Fatal(err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		return func() bool {
			d := sha256.Sum256(input)
			return rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig) == nil
		}
	case *ecdsa.PublicKey:
		return func() bool {
			d := sha256.Sum256(input)
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			return ecdsa.Verify(k, d[:], r, s)
		}
	case ed25519.PublicKey:
		return func() bool { return ed25519.Verify(k, input, sig) }
	}
	tb.Fatalf("unexpected key type %T", key)
	return nil
}
