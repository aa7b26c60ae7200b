package bench_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/bench"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// The scenarios run each library against a fresh authorization server of
// its own, so JWKS fetch counts are exact. They use ES256 (herd) and EdDSA
// (flood) keys because RSA key generation under -race is slow; what is
// measured (when a library fetches the key set) does not depend on the
// algorithm.

const (
	herdSize  = 200
	floodSize = 1000
	// floodWorkers is the concurrency of the concurrent flood.
	floodWorkers = 50
	// scenarioCooldown is tokenguard's UnknownKeyCooldown in the flood
	// scenario: 200ms instead of the 5s default, to keep the test short.
	scenarioCooldown = 200 * time.Millisecond
	// rotationDeadline is how long a rotated-in key is retried after the
	// flood, for every library: five of tokenguard's cooldowns.
	rotationDeadline = time.Second
	// rotationRetry is the pause between retries of the rotated-in key.
	rotationRetry = 10 * time.Millisecond
	// herdJWKSDelay is how long the JWKS endpoint takes to answer during
	// the herd, as a remote authorization server would: every request of
	// the herd is in flight while the fetch runs. (On loopback without it,
	// the fetch often completes before most goroutines have started on a
	// 2-core machine, and the herd is no herd.)
	herdJWKSDelay = 50 * time.Millisecond
)

type subject struct {
	name string
	new  func(ctx context.Context, t bench.Target) (*bench.Lib, error)
}

// subjects are tokenguard (default config but for cfg) and every peer.
func subjects(cfg tokenguard.Config) []subject {
	s := []subject{{"tokenguard", func(ctx context.Context, t bench.Target) (*bench.Lib, error) {
		return bench.Tokenguard(ctx, t, "tokenguard", cfg)
	}}}
	for _, p := range bench.Peers {
		s = append(s, subject{p.Name, p.New})
	}
	return s
}

// setUp starts a server with one alg key and a library against it, and
// warms the library up with one accepted request.
func setUp(t *testing.T, s subject, alg string) (*oauthtest.Server, http.Handler) {
	t.Helper()
	as := oauthtest.NewServer(oauthtest.Options{Algorithms: []string{alg}})
	t.Cleanup(as.Close)
	l, err := s.new(context.Background(), targetOf(as, []string{alg}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	h := l.Handler(alg, bench.OK)
	if code := serve(h, as.MintWith(oauthtest.MintOptions{Alg: alg})); code != http.StatusOK {
		t.Fatalf("warm-up: status %d", code)
	}
	return as, h
}

// TestRotationHerd: after the server rotates its key, 200 concurrent
// requests carry a token signed by the new key, while the JWKS endpoint
// takes 50ms to answer. tokenguard must fetch the key set exactly once and
// accept all 200; the peers are recorded.
func TestRotationHerd(t *testing.T) {
	const alg = "ES256"
	var report []string
	for _, s := range subjects(tokenguard.Config{}) {
		t.Run(s.name, func(t *testing.T) {
			as, h := setUp(t, s, alg)
			before := as.Requests(oauthtest.EndpointJWKS)
			as.RotateKey(alg)
			tok := as.MintWith(oauthtest.MintOptions{Alg: alg})
			as.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{Delay: herdJWKSDelay})

			start := make(chan struct{})
			lat := make([]time.Duration, herdSize)
			codes := make([]int, herdSize)
			var wg sync.WaitGroup
			for i := range herdSize {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					t0 := time.Now()
					codes[i] = serve(h, tok)
					lat[i] = time.Since(t0)
				}()
			}
			close(start)
			wg.Wait()

			fetches := as.Requests(oauthtest.EndpointJWKS) - before
			accepted := 0
			for _, c := range codes {
				if c == http.StatusOK {
					accepted++
				}
			}
			sortDurations(lat)
			line := fmt.Sprintf("| %s | %d | %d/%d | %s | %s |", s.name, fetches, accepted, herdSize,
				round(percentile(lat, 50)), round(percentile(lat, 99)))
			report = append(report, line)
			t.Logf("fetches=%d accepted=%d/%d p50=%s p99=%s", fetches, accepted, herdSize,
				round(percentile(lat, 50)), round(percentile(lat, 99)))
			if s.name == "tokenguard" {
				if fetches != 1 {
					t.Errorf("tokenguard: %d JWKS fetches, want exactly 1", fetches)
				}
				if accepted != herdSize {
					t.Errorf("tokenguard: %d of %d accepted, want all", accepted, herdSize)
				}
			}
		})
	}
	t.Logf("rotation herd: %d concurrent requests with the new kid after a rotation (%s), JWKS answered after %s\n"+
		"| library | JWKS fetches | accepted | p50 | p99 |\n|---|---|---|---|---|\n%s",
		herdSize, alg, herdJWKSDelay, strings.Join(report, "\n"))
}

// TestRandomKidFlood: 1,000 requests with random kids (one after another,
// then from 50 goroutines at once), then a real rotation at the server, whose
// new key is retried every 10ms for up to 1s. tokenguard, with a 200ms
// UnknownKeyCooldown, must fetch at most once per cooldown window, reject
// the flood, and accept the rotated key within the second; the peers are
// recorded.
func TestRandomKidFlood(t *testing.T) {
	const alg = "EdDSA"
	cfg := tokenguard.Config{UnknownKeyCooldown: scenarioCooldown}
	var report []string
	for _, mode := range []string{"sequential", "concurrent"} {
		for _, s := range subjects(cfg) {
			t.Run(mode+"/"+s.name, func(t *testing.T) {
				as, h := setUp(t, s, alg)
				toks := make([]string, floodSize)
				for i := range toks {
					toks[i] = as.MintWith(oauthtest.MintOptions{Alg: alg, Header: map[string]any{"kid": randomKid()}})
				}

				before := as.Requests(oauthtest.EndpointJWKS)
				t0 := time.Now()
				accepted := flood(h, toks, mode == "concurrent")
				floodTime := time.Since(t0)
				floodFetches := as.Requests(oauthtest.EndpointJWKS) - before

				// A real rotation right after the flood.
				before = as.Requests(oauthtest.EndpointJWKS)
				as.RotateKey(alg)
				tok := as.MintWith(oauthtest.MintOptions{Alg: alg})
				t1 := time.Now()
				after := time.Duration(-1)
				tries := 0
				for time.Since(t1) < rotationDeadline {
					tries++
					if serve(h, tok) == http.StatusOK {
						after = time.Since(t1)
						break
					}
					time.Sleep(rotationRetry)
				}
				rotFetches := as.Requests(oauthtest.EndpointJWKS) - before

				rotated := "no (within " + rotationDeadline.String() + ")"
				if after >= 0 {
					rotated = "after " + round(after).String()
				}
				line := fmt.Sprintf("| %s | %s | %d | %d/%d | %s | %s | %d |", mode, s.name, floodFetches, accepted, floodSize,
					round(floodTime), rotated, rotFetches)
				report = append(report, line)
				t.Logf("flood: fetches=%d accepted=%d/%d in %s; rotated key accepted: %s (%d tries, %d fetches)",
					floodFetches, accepted, floodSize, round(floodTime), rotated, tries, rotFetches)

				if s.name == "tokenguard" {
					if accepted != 0 {
						t.Errorf("tokenguard accepted %d random-kid tokens", accepted)
					}
					// The first unknown kid may fetch at once, then at most
					// one more per cooldown window that passed.
					if max := 1 + int(floodTime/scenarioCooldown); floodFetches > max {
						t.Errorf("tokenguard: %d fetches during a %s flood, want at most %d (one per %s)",
							floodFetches, floodTime, max, scenarioCooldown)
					}
					if after < 0 {
						t.Errorf("tokenguard: rotated key not accepted within %s (cooldown %s)", rotationDeadline, scenarioCooldown)
					}
				}
			})
		}
	}
	t.Logf("random-kid flood: %d requests with random kids (%s), then a rotation retried every %s for up to %s;"+
		" tokenguard's UnknownKeyCooldown is %s\n"+
		"| flood | library | JWKS fetches (flood) | accepted | flood time | rotated key accepted | JWKS fetches (rotation) |\n"+
		"|---|---|---|---|---|---|---|\n%s",
		floodSize, alg, rotationRetry, rotationDeadline, scenarioCooldown, strings.Join(report, "\n"))
}

// flood sends every token through h, one after another or from
// floodWorkers goroutines, and returns how many were accepted.
func flood(h http.Handler, toks []string, concurrent bool) int {
	if !concurrent {
		n := 0
		for _, tok := range toks {
			if serve(h, tok) == http.StatusOK {
				n++
			}
		}
		return n
	}
	var (
		mu sync.Mutex
		n  int
		wg sync.WaitGroup
	)
	work := make(chan string)
	for range floodWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tok := range work {
				if serve(h, tok) == http.StatusOK {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}
		}()
	}
	for _, tok := range toks {
		work <- tok
	}
	close(work)
	wg.Wait()
	return n
}

func randomKid() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// round keeps durations readable in reports.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(100 * time.Nanosecond)
	}
}
