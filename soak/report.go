package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// report is what a run found.
type report struct {
	Options     options
	Elapsed     time.Duration
	Interrupted bool

	Requests int64 // judged requests
	Control  int64 // probes and recovery checks
	ByKind   [nKinds][nSlots]int64

	WrongAccepts, WrongRejects, WrongPrincipals, Unexpected int64
	Late503                                                 int64 // of WrongRejects
	Unrecovered                                             []string
	Examples                                                []string

	Phases []phaseSummary

	Upstream            map[string]int // as.Requests per endpoint
	GuardIntrospections int64          // IntrospectionStats().Calls
	TokenCache          tokenguard.TokenCacheStats
	Refused             int64 // upstream calls to another host (refused)

	Rotations, Retirements int
	ProbeMisses            int64

	LogWarnings, LogLeaks int64

	Goroutines struct {
		Baseline, Peak, AfterClose int
		Settle                     time.Duration
	}
	Heap struct{ Start, Mid, End, MaxSampled uint64 }
}

// phaseSummary aggregates the phases of one name.
type phaseSummary struct {
	Name                     string
	Count                    int
	Time                     time.Duration
	Requests                 int64
	UnavailValid, UnavailBad int64
	Calls                    [nEndpoints]int64
	MaxLag, Allowance        time.Duration
	Fault                    bool
}

// ok reports whether every decision was right and the run was whole.
func (r *report) ok() bool {
	return r.WrongAccepts == 0 && r.WrongRejects == 0 && r.WrongPrincipals == 0 && r.Unexpected == 0 &&
		len(r.Unrecovered) == 0 && r.Refused == 0 && r.LogLeaks == 0 && r.Requests > 0
}

func (s *soak) collect() *report {
	r := &report{Options: s.o, Elapsed: s.stats.elapsed, Interrupted: s.stats.interrupted.Load()}
	for k := range r.ByKind {
		for sl := range r.ByKind[k] {
			n := s.stats.byKind[k][sl].Load()
			r.ByKind[k][sl] = n
			r.Requests += n
		}
	}
	r.Control = s.stats.control.Load()
	r.WrongAccepts = s.stats.wrongAccepts.Load()
	r.WrongRejects = s.stats.wrongRejects.Load()
	r.WrongPrincipals = s.stats.wrongPrincipals.Load()
	r.Unexpected = s.stats.unexpected.Load()
	r.Late503 = s.stats.late503.Load()
	s.stats.mu.Lock()
	r.Examples = append(r.Examples, s.stats.examples...)
	s.stats.mu.Unlock()

	s.phases.mu.Lock()
	r.Unrecovered = append(r.Unrecovered, s.phases.failed...)
	index := map[string]int{}
	stopAt := s.stats.trafficStop
	var recoveries []*phase
	for _, p := range s.phases.all {
		if p.recovery {
			recoveries = append(recoveries, p)
		}
	}
	for _, p := range s.phases.all {
		i, ok := index[p.name]
		if !ok {
			i = len(r.Phases)
			index[p.name] = i
			r.Phases = append(r.Phases, phaseSummary{Name: p.name, Fault: !p.healthy && !p.recovery})
		}
		ps := &r.Phases[i]
		ps.Count++
		// Time within the traffic; a healthy stretch without the recoveries
		// its requests were counted in.
		t := overlap(p.start, p.end, s.stats.trafficStart, stopAt)
		if p.healthy {
			for _, rec := range recoveries {
				t -= overlap(later(p.start, rec.start), earlier(orNow(p.end), orNow(rec.end)), s.stats.trafficStart, stopAt)
			}
		}
		ps.Time += max(t, 0)
		ps.Requests += p.requests.Load()
		ps.UnavailValid += p.unavailValid.Load()
		ps.UnavailBad += p.unavailBad.Load()
		for e := range ps.Calls {
			ps.Calls[e] += p.calls[e].Load()
		}
		ps.MaxLag = max(ps.MaxLag, p.lag)
		ps.Allowance = max(ps.Allowance, p.allowed)
	}
	s.phases.mu.Unlock()

	r.Upstream = map[string]int{}
	for _, ep := range []string{oauthtest.EndpointJWKS, oauthtest.EndpointIntrospect, oauthtest.EndpointResourceMetadata,
		oauthtest.EndpointServerMetadata, oauthtest.EndpointOpenIDConfiguration, oauthtest.EndpointToken} {
		r.Upstream[ep] = s.as.Requests(ep)
	}
	r.GuardIntrospections = s.g.IntrospectionStats().Calls
	r.TokenCache = s.g.TokenCacheStats()
	r.Refused = s.up.refused.Load()

	s.keys.mu.Lock()
	r.Rotations, r.Retirements = s.keys.rotations, s.keys.retirements
	s.keys.mu.Unlock()
	r.ProbeMisses = s.stats.probeMisses.Load()
	r.LogWarnings, r.LogLeaks = s.logs.records.Load(), s.logs.leaks.Load()

	r.Goroutines.Peak = int(s.mem.peakGoroutines.Load())
	r.Heap.Start, r.Heap.Mid, r.Heap.End, r.Heap.MaxSampled = s.mem.start, s.mem.mid.Load(), s.mem.end, s.mem.maxHeap.Load()
	return r
}

func (r *report) print(w io.Writer) {
	verdict := "PASS"
	if !r.ok() {
		verdict = "FAIL"
	}
	if r.Interrupted {
		verdict += " (interrupted)"
	}
	fmt.Fprintf(w, "soak %s: %s of traffic, %d clients, %d requests (%.0f/s), %d control requests\n",
		verdict, r.Elapsed.Round(time.Millisecond), r.Options.Clients, r.Requests, float64(r.Requests)/r.Elapsed.Seconds(), r.Control)
	fmt.Fprintf(w, "decisions: wrong accepts %d, wrong rejects %d (%d of them 503s past a fault's allowance), wrong principals %d, unexpected statuses %d, unrecovered phases %d\n",
		r.WrongAccepts, r.WrongRejects, r.Late503, r.WrongPrincipals, r.Unexpected, len(r.Unrecovered))
	for _, e := range r.Examples {
		fmt.Fprintln(w, "  !", e)
	}
	for _, name := range r.Unrecovered {
		fmt.Fprintln(w, "  ! no recovery after", name)
	}
	fmt.Fprintln(w, "by kind (status: count):")
	for k := range r.ByKind {
		var parts []string
		for sl, n := range r.ByKind[k] {
			if n > 0 {
				parts = append(parts, fmt.Sprintf("%s:%d", slotNames[sl], n))
			}
		}
		want := "accept"
		if !kinds[k].accept {
			want = "refuse"
		}
		fmt.Fprintf(w, "  %-24s %s  %s\n", kinds[k].name, want, strings.Join(parts, " "))
	}
	fmt.Fprintln(w, "phases (time within the traffic; 503s to valid/invalid tokens; upstream calls):")
	for _, p := range r.Phases {
		if p.Requests == 0 && p.Calls == [nEndpoints]int64{} {
			continue // a recovery whose requests were counted in an older one
		}
		secs := max(p.Time.Seconds(), 0.001)
		extra := ""
		if p.Fault {
			extra = fmt.Sprintf(", whole again %s after (allowance %s)", p.MaxLag.Round(time.Millisecond), p.Allowance.Round(time.Millisecond))
		}
		fmt.Fprintf(w, "  %-38s x%-2d %5.1fs %7d req  503 %d/%d  jwks %d (%.1f/s) introspect %d (%.0f/s)%s\n",
			p.Name, p.Count, p.Time.Seconds(), p.Requests, p.UnavailValid, p.UnavailBad,
			p.Calls[epJWKS], float64(p.Calls[epJWKS])/secs, p.Calls[epIntrospect], float64(p.Calls[epIntrospect])/secs, extra)
	}
	fmt.Fprintf(w, "upstream (as.Requests): jwks %d, introspect %d, metadata %d, token %d; Guard introspection calls %d; refused non-AS calls %d\n",
		r.Upstream[oauthtest.EndpointJWKS], r.Upstream[oauthtest.EndpointIntrospect],
		r.Upstream[oauthtest.EndpointResourceMetadata]+r.Upstream[oauthtest.EndpointServerMetadata]+r.Upstream[oauthtest.EndpointOpenIDConfiguration],
		r.Upstream[oauthtest.EndpointToken], r.GuardIntrospections, r.Refused)
	fmt.Fprintf(w, "token cache: %d hits, %d misses, %d evictions, %d entries\n",
		r.TokenCache.Hits, r.TokenCache.Misses, r.TokenCache.Evictions, r.TokenCache.Entries)
	fmt.Fprintf(w, "keys: %d rotated in, %d retired and dropped; %d probe answers before the Guard caught up\n",
		r.Rotations, r.Retirements, r.ProbeMisses)
	fmt.Fprintf(w, "log: %d records at Warn or above, %d containing a JWT\n", r.LogWarnings, r.LogLeaks)
	fmt.Fprintf(w, "goroutines: %d before, peak %d, %d after Close (settled in %s)\n",
		r.Goroutines.Baseline, r.Goroutines.Peak, r.Goroutines.AfterClose, r.Goroutines.Settle.Round(time.Millisecond))
	fmt.Fprintf(w, "heap (live after GC): start %s, middle %s, end %s; largest sampled %s\n",
		mib(r.Heap.Start), mib(r.Heap.Mid), mib(r.Heap.End), mib(r.Heap.MaxSampled))
}

// overlap is the length of [a, b] within [lo, hi]; a zero b means now.
func overlap(a, b, lo, hi time.Time) time.Duration {
	return max(earlier(orNow(b), hi).Sub(later(a, lo)), 0)
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// memory samples the heap and goroutine count.
type memory struct {
	start, end     uint64
	mid            atomic.Uint64
	maxHeap        atomic.Uint64
	peakGoroutines atomic.Int64
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// sample reads the heap every 250ms until stop, and the live heap once at mid.
func (m *memory) sample(stop <-chan struct{}, mid time.Duration) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	half := time.NewTimer(mid)
	defer half.Stop()
	for {
		select {
		case <-stop:
			return
		case <-half.C:
			m.mid.Store(liveHeap())
		case <-t.C:
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > m.maxHeap.Load() {
				m.maxHeap.Store(ms.HeapAlloc)
			}
			if n := int64(runtime.NumGoroutine()); n > m.peakGoroutines.Load() {
				m.peakGoroutines.Store(n)
			}
		}
	}
}

// logCounter is the Guard's slog handler: it counts Warn and Error
// records and looks for JWTs in them (a JWT's header starts "eyJ";
// Config.Logger promises never to receive a token).
type logCounter struct {
	records, leaks atomic.Int64
}

func (l *logCounter) logger() *slog.Logger { return slog.New(l) }

func (l *logCounter) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}

func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.records.Add(1)
	leak := strings.Contains(r.Message, "eyJ")
	r.Attrs(func(a slog.Attr) bool {
		leak = leak || strings.Contains(a.String(), "eyJ")
		return !leak
	})
	if leak {
		l.leaks.Add(1)
	}
	return nil
}

func (l *logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	for _, a := range as {
		if strings.Contains(a.String(), "eyJ") {
			l.leaks.Add(1)
		}
	}
	return l
}

func (l *logCounter) WithGroup(string) slog.Handler { return l }
