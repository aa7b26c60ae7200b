package main

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenguard/tokenguard/oauthtest"
)

// Fault phases.
//
// The phase loop alternates a healthy stretch and a fault phase, going
// round faultCycle. Valid opaque tokens need the introspection endpoint,
// so during a phase that breaks it they may get 503 (never 401), and for a
// while after it: the Guard's breaker backs off, Retry-After holds calls
// back, calls caught by a hang end late. That while is bounded by
// allowance, derived from the breaker's documented design (open after 5
// failures in a row for 1s, doubling per failed probe up to 1 minute,
// +-20 % jitter): a fault of length L sees at most ~log2(L+1) failed
// probes, so the breaker stays open at most 1.2*(2L+2s) after it, plus one
// fetch timeout for the calls it caught, plus slack. A 503 for a valid
// opaque token is excused only if the request overlapped
// [fault start, min(fault end + allowance, recovery)], where recovery is
// measured: once every introspection call started before the fault was
// cleared has ended, a fresh valid opaque token (never seen, so never
// cached) is sent every 10ms until one is accepted. A 503 after the
// allowance, while the Guard has still not recovered, is a wrong reject
// (a late 503). Nothing excuses a 401 for a valid token, nor a 503 for a
// valid JWT (its key is known, so it needs no server), nor a 503 during
// introspect-slow (answers stay within the timeout) outside a window. A
// phase that never recovers (within recoveryTimeout) fails the run. While
// a window is open, phases that break introspection are skipped, so that
// windows do not overlap and hide each other.

// allowance is how long after a fault of length l that breaks
// introspection valid opaque tokens may still get 503.
func allowance(o options, l time.Duration) time.Duration {
	return (2*l+2*time.Second)*6/5 + o.FetchTimeout + 500*time.Millisecond
}

// faultSpec is one kind of fault phase.
type faultSpec struct {
	name  string
	jwks  *oauthtest.Fault
	intro *oauthtest.Fault
	// breaksIntro: valid opaque tokens may get 503 during it.
	breaksIntro bool
}

func faultCycle(o options) []faultSpec {
	hang := o.FetchTimeout + time.Second // past the Guard's timeout
	return []faultSpec{
		{name: "jwks-500", jwks: &oauthtest.Fault{Status: 500}},
		{name: "introspect-500", intro: &oauthtest.Fault{Status: 500}, breaksIntro: true},
		{name: "jwks-empty-set", jwks: &oauthtest.Fault{Status: 200, Body: `{"keys":[]}`}},
		{name: "introspect-hang", intro: &oauthtest.Fault{Delay: hang}, breaksIntro: true},
		{name: "jwks-hang", jwks: &oauthtest.Fault{Delay: hang}},
		{name: "introspect-slow", intro: &oauthtest.Fault{Delay: o.FetchTimeout / 20}},
		{name: "jwks-garbage", jwks: &oauthtest.Fault{Status: 200, Body: "<html>maintenance</html>", ContentType: "text/html"}},
		{name: "introspect-503-retry-after", intro: &oauthtest.Fault{Status: 503, Header: http.Header{"Retry-After": {"1"}}}, breaksIntro: true},
		{name: "jwks-unusable-keys", jwks: &oauthtest.Fault{Status: 200, Body: `{"keys":[{"kty":"XYZ","kid":"a"},{"kty":"oct","kid":"b","k":"c2VjcmV0"}]}`}},
		{name: "outage", jwks: &oauthtest.Fault{Status: 500}, intro: &oauthtest.Fault{Status: 500}, breaksIntro: true},
	}
}

// phase is one stretch of the run: healthy, a fault, or the recovery
// after one. Its counters are by send time.
type phase struct {
	name        string
	healthy     bool
	recovery    bool // the stretch after a fault until the Guard is whole again
	breaksIntro bool
	start, end  time.Time // end is zero while it lasts
	// For fault phases: recovered is when the Guard was whole again (for
	// introspection: first accepted a fresh valid opaque token; unix
	// nanoseconds, 0 until then), and excuseEnd the last moment a 503 to
	// a valid opaque token is excused. Both are known once the fault ends.
	recovered atomic.Int64
	excuseEnd atomic.Int64
	lag       time.Duration // recovered - end, for the report
	allowed   time.Duration // the allowance, for the report

	requests     atomic.Int64
	unavailValid atomic.Int64 // 503s for tokens that must be accepted
	unavailBad   atomic.Int64 // 503s for tokens that must be refused
	calls        [nEndpoints]atomic.Int64
}

// schedule is the list of phases and the current one.
type schedule struct {
	cur   atomic.Pointer[phase] // healthy or fault
	label atomic.Pointer[phase] // the open recovery healthy stretches are counted in, if any

	mu     sync.Mutex
	open   []*phase // recoveries under way, oldest first
	all    []*phase
	breaks []*phase // fault phases with breaksIntro
	failed []string // phases that did not recover
}

func (sc *schedule) init() { sc.enter(&phase{name: "healthy", healthy: true}) }

// current is the phase requests and upstream calls are counted in: the
// current one, or during a healthy stretch the recovery still under way.
func (sc *schedule) current() *phase {
	p := sc.cur.Load()
	if p.healthy {
		if r := sc.label.Load(); r != nil {
			return r
		}
	}
	return p
}

// enter makes p the current phase.
func (sc *schedule) enter(p *phase) *phase {
	now := time.Now()
	p.start = now
	sc.mu.Lock()
	if prev := sc.cur.Load(); prev != nil {
		prev.end = now
	}
	sc.all = append(sc.all, p)
	if p.breaksIntro {
		sc.breaks = append(sc.breaks, p)
	}
	sc.mu.Unlock()
	sc.cur.Store(p)
	return p
}

// openRecovery adds a recovery phase to the list and counts healthy
// stretches in it until closeRecovery, unless a recovery of a phase that
// broke introspection is under way: 503s to valid tokens come from that
// one.
func (sc *schedule) openRecovery(p *phase) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.all = append(sc.all, p)
	sc.open = append(sc.open, p)
	sc.relabel()
}

func (sc *schedule) closeRecovery(p *phase) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for i, o := range sc.open {
		if o == p {
			sc.open = append(sc.open[:i], sc.open[i+1:]...)
			break
		}
	}
	sc.relabel()
}

func (sc *schedule) relabel() {
	var label *phase
	for _, o := range sc.open {
		if o.breaksIntro {
			label = o
			break
		}
		label = o
	}
	sc.label.Store(label)
}

// excused reports whether a 503 for a valid opaque token sent at sent and
// answered at recv falls in an introspection fault window; late reports
// whether it missed one only because the allowance was over.
func (sc *schedule) excused(sent, recv time.Time) (ok, late bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, p := range sc.breaks {
		if !p.start.Before(recv) {
			continue
		}
		e := p.excuseEnd.Load()
		if e == 0 {
			return true, false // the fault is on
		}
		if r := p.recovered.Load(); r != 0 && sent.UnixNano() >= r {
			continue // sent after the Guard recovered
		}
		if sent.UnixNano() < e {
			return true, false
		}
		late = true // not recovered when sent, but past the allowance
	}
	return false, late
}

// windowOpen reports whether a phase that breaks introspection has not
// recovered yet.
func (sc *schedule) windowOpen() bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, p := range sc.breaks {
		if p.recovered.Load() == 0 {
			return true
		}
	}
	return false
}

// flap runs the phases until stop; a fault phase starts only if it ends
// before the traffic does. Recoveries are awaited in the background
// (bounded), and flap returns when the last one is over, so every window
// closes.
func (s *soak) flap(stop <-chan struct{}, trafficEnd time.Time) {
	var recoveries sync.WaitGroup
	defer recoveries.Wait()
	cycle := faultCycle(s.o)
	for i := 0; ; i++ {
		if !pause(stop, s.o.Phase) || time.Until(trafficEnd) < s.o.Phase {
			return
		}
		f := cycle[i%len(cycle)]
		if f.intro != nil && s.phases.windowOpen() {
			continue // it would overlap the open window, and hide in it
		}
		p := s.phases.enter(&phase{name: f.name, breaksIntro: f.breaksIntro})
		if f.jwks != nil {
			s.as.SetFault(oauthtest.EndpointJWKS, f.jwks)
		}
		if f.intro != nil {
			s.as.SetFault(oauthtest.EndpointIntrospect, f.intro)
		}
		pause(stop, s.o.Phase)
		s.as.SetFault(oauthtest.EndpointJWKS, nil)
		s.as.SetFault(oauthtest.EndpointIntrospect, nil)
		cleared := time.Now()
		p.allowed = allowance(s.o, cleared.Sub(p.start))
		p.excuseEnd.Store(cleared.Add(p.allowed).UnixNano())
		rec := &phase{name: f.name + " (recovering)", recovery: true, breaksIntro: f.breaksIntro, start: cleared}
		s.phases.openRecovery(rec)
		s.phases.enter(&phase{name: "healthy", healthy: true})
		recoveries.Add(1)
		go func() {
			defer recoveries.Done()
			if f.intro != nil {
				s.awaitIntrospection(p, cleared)
			}
			if f.jwks != nil {
				s.awaitKeySet(p, cleared)
			}
			if p.recovered.Load() == 0 {
				p.recovered.Store(time.Now().UnixNano())
			}
			rec.end = time.Now()
			s.phases.closeRecovery(rec)
		}()
	}
}

// awaitIntrospection measures when the Guard judges opaque tokens again
// after p (see the top).
func (s *soak) awaitIntrospection(p *phase, cleared time.Time) {
	deadline := cleared.Add(recoveryTimeout)
	if s.up.settle(epIntrospect, deadline) {
		for time.Now().Before(deadline) {
			sub := s.subject("r")
			out := s.send(s.as.MintOpaque(oauthtest.Claims{"sub": sub}))
			s.stats.control.Add(1)
			switch {
			case out.status == 200 && out.body == sub:
				p.lag = out.recv.Sub(cleared)
				p.recovered.Store(out.recv.UnixNano())
				return
			case out.status == 200:
				s.stats.fail(&s.stats.wrongPrincipals, s.since(out.sent), p.name+" (recovering)", "recovery probe", out)
			case out.status != 503:
				// A valid, fresh opaque token: only 200, or 503 while the
				// Guard still holds back, are right.
				s.stats.fail(&s.stats.wrongRejects, s.since(out.sent), p.name+" (recovering)", "recovery probe", out)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	s.phases.mu.Lock()
	s.phases.failed = append(s.phases.failed, p.name)
	s.phases.mu.Unlock()
}

// awaitKeySet waits for the first key-set fetch that started after the
// fault was cleared to end (bounded), for the report only: nothing that
// must be accepted needs a fetch.
func (s *soak) awaitKeySet(p *phase, cleared time.Time) {
	deadline := cleared.Add(recoveryTimeout)
	for time.Now().Before(deadline) {
		if s.up.startedAfter(epJWKS, cleared) && s.up.settle(epJWKS, deadline) {
			p.lag = max(p.lag, time.Since(cleared))
			if p.recovered.Load() == 0 {
				p.recovered.Store(time.Now().UnixNano())
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
