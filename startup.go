package tokenguard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenguard/tokenguard/discovery"
)

// Backoff of the start-up retries (Config.RetryStartup).
const (
	startupRetryMin = time.Second
	startupRetryMax = time.Minute
)

// fetchFailure marks a start-up error that fetching again may cure (a
// server down, a network error), as opposed to a configuration error.
type fetchFailure struct{ err error }

func (e fetchFailure) Error() string { return e.err.Error() }
func (e fetchFailure) Unwrap() error { return e.err }

func isFetchFailure(err error) bool {
	var f fetchFailure
	return errors.As(err, &f)
}

// startup builds a Guard in the background until it succeeds, for a Guard
// New returned before its servers could be reached.
type startup struct {
	cfg    Config
	ready  atomic.Pointer[Guard]
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	lastErr error
	nextAt  time.Time
	closed  bool
}

// startInBackground returns a Guard that answers 503 until a Guard built
// from cfg starts; first is the error of the attempt New made.
func startInBackground(cfg Config, first error) (*Guard, error) {
	g := &Guard{cfg: cfg, now: cfg.Now}
	if g.now == nil {
		g.now = time.Now
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	// What challenges and MetadataPath need is known from the
	// configuration alone, so a 400 before the start names the same
	// document as one after.
	g.resource = cfg.Resource
	g.resourceMetadataURL = cfg.ResourceMetadataURL
	if g.resourceMetadataURL == "" && cfg.Resource != "" {
		if u, err := discovery.ResourceMetadataURL(cfg.Resource); err == nil {
			g.resourceMetadataURL = u
		}
	}
	if _, err := url.Parse(g.resourceMetadataURL); err != nil {
		g.resourceMetadataURL = ""
	}
	g.realm = cfg.Realm
	if g.realm == "" {
		g.realm = g.resource
	}
	s := &startup{cfg: cfg, done: make(chan struct{}), lastErr: first}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	delay := jitter(startupRetryMin)
	s.nextAt = g.now().Add(delay)
	g.startup = s
	g.startupLog(first, delay)
	go s.run(g, delay)
	return g, nil
}

// run retries the start-up with backoff until it succeeds or Close.
func (s *startup) run(g *Guard, delay time.Duration) {
	defer close(s.done)
	wait := startupRetryMin
	for {
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		in, err := newGuard(s.ctx, s.cfg)
		if err == nil {
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				in.Close()
				return
			}
			s.ready.Store(in)
			s.lastErr = nil
			s.mu.Unlock()
			// Requirements set up on g before now; later ones go to in.
			scopes, _ := g.scopes.list()
			in.scopes.add(scopes)
			if l := s.cfg.Logger; l != nil {
				l.Info("tokenguard: started", "issuers", in.Issuers())
			}
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		wait = min(wait*2, startupRetryMax)
		delay = jitter(wait)
		s.mu.Lock()
		s.lastErr = err
		s.nextAt = g.now().Add(delay)
		s.mu.Unlock()
		g.startupLog(err, delay)
	}
}

// jitter spreads d by ±20%, so that a fleet restarted together does not
// retry in step.
func jitter(d time.Duration) time.Duration {
	return d*4/5 + rand.N(d*2/5+1)
}

func (g *Guard) startupLog(err error, retry time.Duration) {
	if l := g.cfg.Logger; l != nil {
		l.Warn("tokenguard: start-up failed; answering 503 until it succeeds", "error", err, "retry_in", retry.Round(time.Millisecond))
	}
}

// guard returns the started Guard, or nil.
func (s *startup) guard() *Guard { return s.ready.Load() }

// retryIn is how long until the next attempt.
func (s *startup) retryIn(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextAt.Sub(now)
}

// unavailable is the answer to a request before the start.
func (s *startup) unavailable(now time.Time) *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errUnavailable(s.nextAt.Sub(now), fmt.Errorf("not started yet: %w", s.lastErr))
}

func (s *startup) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
	if in := s.ready.Load(); in != nil {
		in.Close()
	}
}

// started returns the Guard that serves for g, when g was returned before
// its start (Config.RetryStartup) and the start has succeeded since; nil
// otherwise, and g answers itself.
func (g *Guard) started() *Guard {
	if g.startup == nil {
		return nil
	}
	return g.startup.guard()
}

// Ready returns nil when the Guard is serving, and otherwise why not: a
// Guard New returned before its servers could be reached
// (Config.RetryStartup) gives the last start-up error, wrapping
// ErrUnavailable, until a start succeeds. Use it in a readiness probe.
func (g *Guard) Ready() error {
	if g.startup == nil || g.startup.guard() != nil {
		return nil
	}
	g.startup.mu.Lock()
	defer g.startup.mu.Unlock()
	return fmt.Errorf("%w: not started yet: %w", ErrUnavailable, g.startup.lastErr)
}
