// Package jwks keeps one authorization server's JSON Web Key Set (RFC 7517)
// fresh in memory: a background refresh paced by the server's Cache-Control,
// one coalesced and rate-limited refresh when a token names an unknown key,
// and the last good set kept (for a bounded time) when a refresh fails.
package jwks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenguard/tokenguard/internal/fetch"
)

var (
	// ErrUnknownKey means no key in the current set fits the token's kid and
	// alg, and a refresh either ran without finding one or is rate-limited.
	ErrUnknownKey = errors.New("jwks: no matching key")
	// ErrUnavailable means the set cannot decide: it was never fetched, it is
	// older than MaxStaleness, or the refresh a lookup needed failed.
	ErrUnavailable = errors.New("jwks: key set unavailable")
	// ErrClosed is returned by a Set after Close.
	ErrClosed = errors.New("jwks: set closed")
	// ErrNoUsableKeys means a fetched document held no key that can verify
	// a signature (an empty set, or every key skipped). Such a fetch is a
	// failed refresh: the last good set stays, within MaxStaleness.
	ErrNoUsableKeys = errors.New("jwks: no usable key in the set")
)

// maxRetryAfter bounds how long a server's Retry-After holds fetches back.
const maxRetryAfter = 5 * time.Minute

// Options configures a Set. The zero value is usable; each field says its default.
type Options struct {
	// HTTPClient fetches the set. Nil means http.DefaultClient.
	HTTPClient *http.Client
	// FetchTimeout bounds one fetch. Zero means 10s.
	FetchTimeout time.Duration
	// MaxBytes caps the document size. Zero means 1 MiB.
	MaxBytes int64
	// MaxKeys caps the number of JWKs in a document. Zero means 100.
	MaxKeys int
	// MinRefreshInterval is the shortest time between background refreshes,
	// also used after a failed refresh and for "no-store"/"no-cache"
	// responses. Zero means 1 minute.
	MinRefreshInterval time.Duration
	// MaxRefreshInterval is the longest time between background refreshes,
	// also used when the response has no max-age. Zero means 1 hour.
	MaxRefreshInterval time.Duration
	// UnknownKeyCooldown is the least time between two refreshes caused by
	// unknown key ids, so a flood of random kids costs the authorization
	// server at most one fetch per cooldown. Zero means 5s.
	UnknownKeyCooldown time.Duration
	// MaxStaleness is how long the last good set is used while refreshes
	// fail. Zero means 24 hours.
	MaxStaleness time.Duration
	// InsecureAllowHTTP accepts an http:// URL. Only for tests and development.
	InsecureAllowHTTP bool
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// OnRefresh is told the keys of every successful refresh, after they
	// replaced the previous set. Nil means nobody is told.
	OnRefresh func(keys []Key)
	// OnError is told of every failed refresh and of skipped keys. Nil
	// means errors are only visible through LastError.
	OnError func(error)
	// Observe, when set, is called as each fetch starts, for metrics and
	// traces: ctx has the values of what caused it (the Lookup of an
	// unknown kid, a Refresh, New; the Set's own for a scheduled one),
	// and the fetch runs in the context Observe returns (a span in it
	// becomes the HTTP call's parent), though only the Set's Close
	// cancels the fetch. done is called once with the outcome, before
	// the fetch's waiters are released. Observe and done run on the
	// fetch's goroutine and must not block; a panic in either is
	// reported to OnError and ignored.
	Observe func(ctx context.Context, trigger Trigger) (_ context.Context, done func(Fetch))
	// OnRateLimited, when set, is called for each Lookup of an unknown kid
	// that caused no fetch because UnknownKeyCooldown (or the server's
	// Retry-After) had not passed.
	OnRateLimited func(ctx context.Context)
}

// Trigger says why a Set fetched.
type Trigger string

// The triggers.
const (
	TriggerStart      Trigger = "start"       // New
	TriggerSchedule   Trigger = "schedule"    // the background refresh
	TriggerUnknownKey Trigger = "unknown_kid" // a Lookup of a kid the set lacks
	TriggerRefresh    Trigger = "refresh"     // Refresh
)

// Fetch is the outcome of one fetch, for Options.Observe.
type Fetch struct {
	Trigger Trigger
	// Status is the HTTP status, 0 when there was no answer.
	Status int
	// Duration is the time from the start of the fetch to its outcome.
	Duration time.Duration
	// Keys and Skipped count the usable keys and the JWKs skipped as
	// unusable in the document; both are 0 when none was parsed.
	Keys, Skipped int
	// Err is nil for a fetch that replaced the set.
	Err error
}

func (o *Options) defaults() {
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 10 * time.Second
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 1 << 20
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = 100
	}
	if o.MinRefreshInterval <= 0 {
		o.MinRefreshInterval = time.Minute
	}
	if o.MaxRefreshInterval <= 0 {
		o.MaxRefreshInterval = time.Hour
	}
	if o.MaxRefreshInterval < o.MinRefreshInterval {
		o.MaxRefreshInterval = o.MinRefreshInterval
	}
	if o.UnknownKeyCooldown <= 0 {
		o.UnknownKeyCooldown = 5 * time.Second
	}
	if o.MaxStaleness <= 0 {
		o.MaxStaleness = 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Set is a cached key set for one JWKS URL. It is safe for concurrent use.
type Set struct {
	url    string
	opts   Options
	static bool // NewStatic: never fetched, never stale

	cur        atomic.Pointer[snapshot]
	generation atomic.Uint64 // of the last snapshot stored

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan time.Duration // tells the background loop when to run next

	mu          sync.Mutex
	closed      bool
	inflight    *flight
	lastKidTrip time.Time // start of the last fetch an unknown kid caused
	holdUntil   time.Time // no unknown-kid fetch before this (server's Retry-After)
	nextAt      time.Time // when the background refresh runs next
	lastErr     error
	fetches     int
}

type snapshot struct {
	*parsed
	fetchedAt  time.Time
	generation uint64
}

type flight struct {
	done chan struct{}
	err  error
}

// New fetches the key set at url once, so that a misconfigured URL fails at
// start-up, and starts the background refresh. ctx bounds the first fetch
// only; Close stops the refresh.
func New(ctx context.Context, url string, opts Options) (*Set, error) {
	opts.defaults()
	if _, err := fetch.CheckURL(url, opts.InsecureAllowHTTP); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	s := &Set{url: url, opts: opts, wake: make(chan time.Duration, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	f, _ := s.startFlight(ctx, TriggerStart, false)
	select {
	case <-f.done:
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("jwks: first fetch of %s: %w", url, ctx.Err())
	}
	if f.err != nil {
		s.Close()
		return nil, f.err
	}
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

// NewStatic returns a Set holding the keys of doc, a JWK Set document
// (RFC 7517 §5) given in configuration or read from a file, for
// air-gapped deployments and tests. It never fetches: its keys never go
// stale, a token whose key it lacks is refused at once (ErrUnknownKey),
// and Refresh does nothing. doc is checked as a fetched document is
// (Options.MaxBytes, MaxKeys; OnError is told of skipped keys), and a
// document without one usable key is an error (ErrNoUsableKeys).
func NewStatic(doc []byte, opts Options) (*Set, error) {
	opts.defaults()
	if int64(len(doc)) > opts.MaxBytes {
		return nil, fmt.Errorf("jwks: static key set is %d bytes, more than %d", len(doc), opts.MaxBytes)
	}
	p, err := parse(doc, opts.MaxKeys, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: static key set: %w", err)
	}
	if len(p.index) == 0 {
		return nil, fmt.Errorf("%w: the static key set has %d keys, none usable", ErrNoUsableKeys, len(p.keys)+len(p.skipped))
	}
	if opts.OnError != nil {
		for _, sk := range p.skipped {
			opts.OnError(fmt.Errorf("jwks: static key set: skipped key %d (kid %s): %s", sk.Index, kidText(sk.ID), sk.Reason))
		}
	}
	s := &Set{opts: opts, static: true, wake: make(chan time.Duration, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cur.Store(&snapshot{parsed: p, fetchedAt: opts.Now(), generation: s.generation.Add(1)})
	return s, nil
}

// Generation counts the key sets this Set has held: it changes with every
// successful refresh (even one that changed nothing) and is 0 before the
// first. A refusal that depends on the keys (a signature that does not
// verify) may be remembered for as long as the generation is the same.
func (s *Set) Generation() uint64 {
	if c := s.cur.Load(); c != nil {
		return c.generation
	}
	return 0
}

// URL returns the key set's URL ("" for a static set).
func (s *Set) URL() string { return s.url }

// Keys returns the keys of the current set.
func (s *Set) Keys() []Key {
	if c := s.cur.Load(); c != nil {
		return append([]Key(nil), c.keys...)
	}
	return nil
}

// FetchedAt returns when the key set in use was fetched; zero before the
// first fetch.
func (s *Set) FetchedAt() time.Time {
	if c := s.cur.Load(); c != nil {
		return c.fetchedAt
	}
	return time.Time{}
}

// LastError returns the error of the most recent refresh, nil if it succeeded.
func (s *Set) LastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// Fetches returns how many fetches this set has started.
func (s *Set) Fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// Lookup returns the keys that can verify a token signed with alg under kid
// (kid may be empty). On a miss it triggers at most one refresh per
// UnknownKeyCooldown, shared by every concurrent caller, and waits for it
// within ctx.
func (s *Set) Lookup(ctx context.Context, kid, alg string) ([]Key, error) {
	keys, err := s.current(kid, alg)
	if err != nil || len(keys) > 0 {
		return keys, err
	}
	if s.static {
		return nil, fmt.Errorf("%w: kid %s, alg %s (static key set)", ErrUnknownKey, kidText(kid), alg)
	}
	f, ok := s.startFlight(ctx, TriggerUnknownKey, true)
	if !ok {
		if s.opts.OnRateLimited != nil {
			func() {
				defer s.recovered("OnRateLimited")
				s.opts.OnRateLimited(ctx)
			}()
		}
		// Rate-limited. A refresh may have just landed; look again.
		if keys, err := s.current(kid, alg); err != nil || len(keys) > 0 {
			return keys, err
		}
		if err := s.LastError(); err != nil {
			return nil, fmt.Errorf("%w: kid %s unknown and the last refresh failed: %w", ErrUnavailable, kidText(kid), err)
		}
		return nil, fmt.Errorf("%w: kid %s, alg %s (refresh rate-limited)", ErrUnknownKey, kidText(kid), alg)
	}
	if f == nil {
		return nil, ErrClosed
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for refresh of %s: %w", ErrUnavailable, s.url, ctx.Err())
	}
	if f.err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, f.err)
	}
	keys, err = s.current(kid, alg)
	if err != nil || len(keys) > 0 {
		return keys, err
	}
	return nil, fmt.Errorf("%w: kid %s, alg %s", ErrUnknownKey, kidText(kid), alg)
}

// kidText quotes a kid for an error message. Kids come from tokens, so
// the text is bounded and escaped: it ends up in operators' logs.
func kidText(kid string) string {
	if len(kid) > 64 {
		kid = kid[:64] + "..."
	}
	return strconv.Quote(kid)
}

// Usable returns nil when the set can vouch for tokens at now (read from
// the clock in Options.Now): fetched, not older than MaxStaleness and not
// closed. Otherwise it returns the error (wrapping ErrUnavailable or
// ErrClosed) that Lookup would. A cache of verified tokens asks it before
// trusting an entry; now is a parameter so such a caller reads its clock
// once per request.
func (s *Set) Usable(now time.Time) error {
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	c := s.cur.Load()
	if c == nil {
		return fmt.Errorf("%w: %s has never been fetched", ErrUnavailable, s.url)
	}
	if age := now.Sub(c.fetchedAt); age > s.opts.MaxStaleness && !s.static {
		return fmt.Errorf("%w: %s last fetched %s ago (limit %s)", ErrUnavailable, s.url, age.Round(time.Second), s.opts.MaxStaleness)
	}
	return nil
}

// Has reports whether the current set holds the key with thumbprint. A
// refresh stores the new set before it calls OnRefresh, so a caller that
// stored something under a key and then finds it here was either seen by
// that OnRefresh or sees the new set.
func (s *Set) Has(thumbprint string) bool {
	c := s.cur.Load()
	if c == nil {
		return false
	}
	for i := range c.keys {
		if c.keys[i].Thumbprint == thumbprint {
			return true
		}
	}
	return false
}

func (s *Set) current(kid, alg string) ([]Key, error) {
	c := s.cur.Load()
	if c == nil {
		return nil, fmt.Errorf("%w: %s has never been fetched", ErrUnavailable, s.url)
	}
	if age := s.opts.Now().Sub(c.fetchedAt); age > s.opts.MaxStaleness && !s.static {
		return nil, fmt.Errorf("%w: %s last fetched %s ago (limit %s)", ErrUnavailable, s.url, age.Round(time.Second), s.opts.MaxStaleness)
	}
	return c.index[lookup{kid, alg}], nil
}

// RetryIn returns how long from now until the set will next try to fetch
// (its background refresh, or the next unknown-kid refresh the cooldown
// and the server's Retry-After allow), at least one second: what a client
// refused for want of keys should be told to wait.
func (s *Set) RetryIn(now time.Time) time.Duration {
	stale := s.Usable(now) != nil // a stale set starts no unknown-kid refresh
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		// Shutting down: nothing will be fetched here again, and a retry
		// soon may reach a replica that is not.
		return time.Second
	}
	next := s.nextAt
	if !stale {
		kid := now
		if !s.lastKidTrip.IsZero() {
			kid = s.lastKidTrip.Add(s.opts.UnknownKeyCooldown)
		}
		if s.holdUntil.After(kid) {
			kid = s.holdUntil
		}
		if next.IsZero() || kid.Before(next) {
			next = kid
		}
	}
	return max(next.Sub(now), time.Second)
}

// Refresh fetches the set now, or joins a fetch already in flight, and
// returns its result. It is not rate-limited.
func (s *Set) Refresh(ctx context.Context) error {
	if s.static {
		if s.ctx.Err() != nil {
			return ErrClosed
		}
		return nil
	}
	f, _ := s.startFlight(ctx, TriggerRefresh, false)
	if f == nil {
		return ErrClosed
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startFlight returns the fetch in flight or starts one, caused by
// trigger in ctx. With limited, a new fetch starts only if the cooldown has
// passed since the last one; otherwise it returns (nil, false). It returns
// (nil, true) after Close.
func (s *Set) startFlight(ctx context.Context, trigger Trigger, limited bool) (*flight, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.static {
		return nil, true
	}
	if s.inflight != nil {
		return s.inflight, true
	}
	if limited {
		// Only fetches that unknown kids cause count against the cooldown,
		// so a scheduled refresh never delays a real rotation.
		now := s.opts.Now()
		if !s.lastKidTrip.IsZero() && now.Sub(s.lastKidTrip) < s.opts.UnknownKeyCooldown || now.Before(s.holdUntil) {
			return nil, false
		}
		s.lastKidTrip = now
	}
	f := &flight{done: make(chan struct{})}
	s.inflight = f
	s.fetches++
	start := s.opts.Now()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fctx, done := s.observe(ctx, trigger, start)
		next, out, err := s.fetch(fctx)
		out.Err = err
		done(out)
		s.mu.Lock()
		s.inflight = nil
		s.lastErr = err
		s.nextAt = s.opts.Now().Add(next)
		s.mu.Unlock()
		// Reported before the waiters are released, so a caller that saw
		// the failure finds it reported.
		if err != nil && s.opts.OnError != nil {
			s.opts.OnError(err)
		}
		f.err = err
		close(f.done)
		// The loop only needs the latest schedule: replace a pending one,
		// and never block once the set is closing.
		select {
		case <-s.wake:
		default:
		}
		select {
		case s.wake <- next:
		case <-s.ctx.Done():
		}
	}()
	return f, true
}

// observe starts the observation of a fetch caused by trigger in ctx, on
// the fetch's own goroutine (never under s.mu): the fetch's context and
// the function to call with its outcome. Without Options.Observe the
// context is the Set's. The fetch keeps the caller's values (its trace)
// but not its cancellation, since it serves every waiter: only Close
// stops it, whatever context Observe returns. A panic in Observe or in
// its done is reported to OnError and otherwise ignored, so that the
// flight still ends and releases its waiters.
func (s *Set) observe(ctx context.Context, trigger Trigger, start time.Time) (context.Context, func(Fetch)) {
	if s.opts.Observe == nil {
		return s.ctx, func(Fetch) {}
	}
	octx, d := s.callObserve(context.WithoutCancel(ctx), trigger)
	fctx, cancel := context.WithCancel(octx)
	unregister := context.AfterFunc(s.ctx, cancel)
	return fctx, func(f Fetch) {
		defer cancel()
		defer unregister()
		if d == nil {
			return
		}
		f.Trigger, f.Duration = trigger, s.opts.Now().Sub(start)
		defer s.recovered("done")
		d(f)
	}
}

// callObserve calls Options.Observe, and falls back to ctx and no done
// when it panics or returns no context.
func (s *Set) callObserve(ctx context.Context, trigger Trigger) (octx context.Context, done func(Fetch)) {
	defer func() {
		if octx == nil {
			octx, done = ctx, nil
		}
	}()
	defer s.recovered("Observe")
	return s.opts.Observe(ctx, trigger)
}

// recovered, deferred, turns a panic of an Options callback into an
// OnError report.
func (s *Set) recovered(what string) {
	if v := recover(); v != nil && s.opts.OnError != nil {
		s.opts.OnError(fmt.Errorf("jwks: %s: Options.%s panicked: %v", s.url, what, v))
	}
}

// fetch downloads and parses the set, replaces the current one on success,
// and returns when the next background refresh is due and what it saw.
func (s *Set) fetch(ctx context.Context) (time.Duration, Fetch, error) {
	var out Fetch
	resp, err := fetch.Get(ctx, s.url, fetch.Options{
		Client:        s.opts.HTTPClient,
		Timeout:       s.opts.FetchTimeout,
		MaxBytes:      s.opts.MaxBytes,
		Accept:        "application/jwk-set+json, application/json",
		AllowInsecure: s.opts.InsecureAllowHTTP,
	})
	if err != nil {
		next := s.opts.MinRefreshInterval
		var se *fetch.StatusError
		if errors.As(err, &se) {
			out.Status = se.StatusCode
		}
		if se != nil && se.RetryAfter > 0 && (se.StatusCode == 429 || se.StatusCode == 503) {
			// The server asked for quiet: no unknown-kid fetch until then,
			// within reason (a hostile hint must not silence us for days).
			hold := min(se.RetryAfter, maxRetryAfter)
			s.mu.Lock()
			s.holdUntil = s.opts.Now().Add(hold)
			s.mu.Unlock()
			next = max(next, hold)
		}
		return next, out, fmt.Errorf("jwks: %w", err)
	}
	out.Status = http.StatusOK
	old := s.cur.Load()
	var prev map[string]*KeyLife
	if old != nil {
		prev = make(map[string]*KeyLife, len(old.keys))
		for _, k := range old.keys {
			prev[k.Thumbprint] = k.life
		}
	}
	p, err := parse(resp.Body, s.opts.MaxKeys, prev)
	if err != nil {
		return s.opts.MinRefreshInterval, out, fmt.Errorf("jwks: %s: %w", s.url, err)
	}
	out.Keys, out.Skipped = len(p.keys), len(p.skipped)
	if len(p.index) == 0 {
		// An empty or wholly unusable set is a server fault, not a
		// rotation: storing it would turn every valid token into 401
		// "unknown key" (and any request with a random kid can make us
		// fetch it). Keep the last good set instead.
		reasons := make([]string, 0, min(len(p.skipped), 3))
		for _, sk := range p.skipped[:min(len(p.skipped), 3)] {
			reasons = append(reasons, fmt.Sprintf("kid %s: %s", kidText(sk.ID), sk.Reason))
		}
		return s.opts.MinRefreshInterval, out, fmt.Errorf("%w: %s has %d keys, none usable (%s); keeping the last good set", ErrNoUsableKeys, s.url, len(p.keys)+len(p.skipped), strings.Join(reasons, "; "))
	}
	// A refresh replaces the set: a key the server stopped publishing must
	// stop verifying tokens now, not live on in a merge.
	s.cur.Store(&snapshot{parsed: p, fetchedAt: s.opts.Now(), generation: s.generation.Add(1)})
	if old != nil {
		// After the store: a caller that finds a key live either saw the
		// old set before this or sees a key of the new one.
		kept := make(map[*KeyLife]bool, len(p.keys))
		for _, k := range p.keys {
			kept[k.life] = true
		}
		for _, k := range old.keys {
			if !kept[k.life] {
				k.life.gone.Store(true)
			}
		}
	}
	if s.opts.OnRefresh != nil {
		s.opts.OnRefresh(append([]Key(nil), p.keys...))
	}
	if len(p.skipped) > 0 && s.opts.OnError != nil {
		for _, sk := range p.skipped {
			s.opts.OnError(fmt.Errorf("jwks: %s: skipped key %d (kid %s): %s", s.url, sk.Index, kidText(sk.ID), sk.Reason))
		}
	}
	return s.interval(resp.Header.Get("Cache-Control")), out, nil
}

// interval turns Cache-Control into the time until the next refresh, within
// [MinRefreshInterval, MaxRefreshInterval].
func (s *Set) interval(cc string) time.Duration {
	d := s.opts.MaxRefreshInterval
	for _, dir := range strings.Split(cc, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			// Caching anyway is the point: refetching per request would turn
			// every token into a request to the authorization server.
			return s.opts.MinRefreshInterval
		case "max-age":
			if n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil && n >= 0 {
				if n > int64(s.opts.MaxRefreshInterval/time.Second) {
					d = s.opts.MaxRefreshInterval
				} else {
					d = time.Duration(n) * time.Second
				}
			}
		}
	}
	return min(max(d, s.opts.MinRefreshInterval), s.opts.MaxRefreshInterval)
}

func (s *Set) loop() {
	defer s.wg.Done()
	t := time.NewTimer(s.opts.MaxRefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case next := <-s.wake:
			t.Reset(next)
		case <-t.C:
			s.startFlight(s.ctx, TriggerSchedule, false)
			// The flight sends the next interval on wake; until then, do not
			// fire again.
			t.Reset(s.opts.MaxRefreshInterval)
		}
	}
}

// Close stops the background refresh and waits for any fetch in flight to
// end. It is safe to call more than once.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}
