// Command soak runs a tokenguard Guard under sustained mixed traffic while
// its authorization server rotates keys and fails, and checks every decision.
//
// Everything runs in this process and on 127.0.0.1 only: an oauthtest
// authorization server (with a registered resource-server client and
// introspection), a second one whose keys forge tokens, a Guard with
// introspection, and the protected API on an httptest server. Many clients
// send valid JWTs, reused (cached) JWTs, valid opaque tokens, and tokens that
// must be refused: expired, wrong audience, forged (signed by the other
// server's key under this issuer's iss, with this server's kid or the other
// server's), unsecured (alg none), signed by a key that was retired, revoked
// opaque tokens and several kinds of garbage. Meanwhile keys are rotated
// and retired, and the JWKS and introspection endpoints fail in phases (500s,
// hangs past the fetch timeout, slow answers, empty or unusable key sets,
// 503 with Retry-After, a whole outage).
//
// The expected outcome of every request is known when it is sent (see
// traffic.go, keys.go and faults.go), so the tool counts wrong accepts and wrong
// rejects, which must both be zero, and prints 503s by phase, upstream
// calls, goroutines after Close and the heap trend. It exits 1 when any
// decision was wrong, 2 when it could not run.
//
//	go -C soak run . -duration 5m
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"time"
)

// options configures one run. The test uses a short one.
type options struct {
	Duration     time.Duration // how long clients send traffic
	Clients      int           // concurrent clients
	MaxRequests  int64         // the clients stop after this many judged requests
	Phase        time.Duration // length of each fault phase, and of the healthy stretch before it
	RotateEvery  time.Duration // how often a key is rotated in (and its predecessor retired)
	FetchTimeout time.Duration // the Guard's FetchTimeout (key sets and introspection)
	KeyRefresh   time.Duration // the Guard's KeyRefreshMin, and the JWKS max-age
	OpaquePool   int           // valid opaque tokens minted up front and sent in turn
}

func defaultOptions() options {
	return options{
		Duration:     30 * time.Second,
		Clients:      64,
		MaxRequests:  5_000_000,
		Phase:        1500 * time.Millisecond,
		RotateEvery:  3 * time.Second,
		FetchTimeout: 2 * time.Second,
		KeyRefresh:   time.Second,
		OpaquePool:   20_000,
	}
}

func (o options) check() error {
	switch {
	case o.Duration <= 0 || o.Duration > 24*time.Hour:
		return fmt.Errorf("-duration must be in (0, 24h], not %s", o.Duration)
	case o.Clients < 1 || o.Clients > 4096:
		return fmt.Errorf("-clients must be in [1, 4096], not %d", o.Clients)
	case o.MaxRequests < 1:
		return fmt.Errorf("-max-requests must be positive")
	case o.Phase < 50*time.Millisecond:
		return fmt.Errorf("-phase must be at least 50ms")
	case o.RotateEvery < 50*time.Millisecond:
		return fmt.Errorf("-rotate-every must be at least 50ms")
	case o.FetchTimeout < 100*time.Millisecond || o.FetchTimeout > time.Minute:
		return fmt.Errorf("-fetch-timeout must be in [100ms, 1m]")
	case o.KeyRefresh < time.Second:
		return fmt.Errorf("-key-refresh must be at least 1s (JWKS max-age has whole seconds)")
	case o.OpaquePool < 1 || o.OpaquePool > 1_000_000:
		return fmt.Errorf("-opaque-pool must be in [1, 1000000]")
	}
	return nil
}

// requestTimeout bounds one request of a client: longer than anything the
// Guard may wait for upstream, so a timeout here is a finding.
func (o options) requestTimeout() time.Duration { return 3*o.FetchTimeout + 5*time.Second }

func main() {
	o := defaultOptions()
	flag.DurationVar(&o.Duration, "duration", o.Duration, "how long the clients send traffic")
	flag.IntVar(&o.Clients, "clients", o.Clients, "concurrent clients")
	flag.Int64Var(&o.MaxRequests, "max-requests", o.MaxRequests, "stop after this many judged requests")
	flag.DurationVar(&o.Phase, "phase", o.Phase, "length of each fault phase and of the healthy stretch before it")
	flag.DurationVar(&o.RotateEvery, "rotate-every", o.RotateEvery, "interval between key rotations")
	flag.DurationVar(&o.FetchTimeout, "fetch-timeout", o.FetchTimeout, "the Guard's FetchTimeout")
	flag.DurationVar(&o.KeyRefresh, "key-refresh", o.KeyRefresh, "the Guard's KeyRefreshMin and the JWKS max-age")
	flag.IntVar(&o.OpaquePool, "opaque-pool", o.OpaquePool, "valid opaque tokens minted up front")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "soak: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	rep.print(os.Stdout)
	if !rep.ok() {
		os.Exit(1)
	}
}
