package tgredis_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	tgredis "github.com/tokenguard/tokenguard/cache/redis"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// go test -run '^$' -bench Fleet -benchmem -benchtime 5000x: one request
// through guard.Handler around a 200 handler (httptest request and
// recorder, as the core's bench_test.go), one at a time, on loopback, for
// an opaque token whose answer is
//
//	local-cache   in the Guard's own cache
//	redis-only    only in Redis (put there by another Guard; this one never saw it)
//	new           nowhere: asked of the authorization server, through the fleet
//	new-no-store  nowhere, and the Guard has no fleet (the direct call alone)
//	redis-down    nowhere, and Redis has been killed: the store calls fail
//
// Besides ns/op: p99-ns, the 99th percentile of the requests' durations;
// store-calls/op, the calls made to the SharedStore (a counting decorator
// around the Store); and for redis-down, mean-ns and the time spent in the
// store per request (store-ns/op, store-p99-ns): the latency Redis being
// down adds to a request for a new token. BenchmarkFleetHarness is the
// request and recorder around the bare handler.

// durations collects one duration per iteration, allocated outside the
// timer.
type durations []time.Duration

func newDurations(b *testing.B) durations { return make(durations, 0, b.N) }

// p99 is the 99th percentile (nearest rank).
func (d durations) p99() time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(math.Ceil(0.99*float64(len(s))))-1]
}

func (d durations) mean() time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

// benchServe is one request through h with token, timed into d (the
// request and recorder included, as in ns/op).
func benchServe(b *testing.B, h http.Handler, token string, d *durations) {
	start := time.Now()
	r := httptest.NewRequest("GET", "/orders", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	*d = append(*d, time.Since(start))
	if w.Code != http.StatusOK {
		b.Fatalf("status %d: %s", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

// benchGuard is a Guard at as; with a store, in a fleet through it,
// counted.
func benchGuard(b *testing.B, as *oauthtest.Server, store tokenguard.SharedStore) (*tokenguard.Guard, *countingStore) {
	var cs *countingStore
	fc := tokenguard.FleetConfig{}
	if store != nil {
		cs = &countingStore{s: store}
		fc = tokenguard.FleetConfig{Store: cs, Key: fleetKey, Timeout: 50 * time.Millisecond}
	}
	return newGuard(b, guardConfig(as, fc)), cs
}

func mintN(as *oauthtest.Server, n int) []string {
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = as.MintOpaque(oauthtest.Claims{"scope": "orders:read orders:write"})
	}
	return tokens
}

func reportStore(b *testing.B, cs *countingStore) {
	if cs != nil {
		b.ReportMetric(float64(cs.calls.Load())/float64(b.N), "store-calls/op")
	}
}

func BenchmarkFleetHarness(b *testing.B) {
	d := newDurations(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		benchServe(b, okHandler, "", &d)
	}
	b.StopTimer()
	b.ReportMetric(float64(d.p99()), "p99-ns")
}

func BenchmarkFleetRequest(b *testing.B) {
	srv := needServer(b)
	as := oauthtest.NewServer(oauthtest.Options{})
	b.Cleanup(as.Close)
	as.RegisterClient(rsID, rsSecret)
	newStore := func(b *testing.B, srv *server, prefix string) tokenguard.SharedStore {
		return tgredis.New(client(b, srv), tgredis.Options{Prefix: prefix})
	}

	b.Run("local-cache", func(b *testing.B) {
		g, cs := benchGuard(b, as, newStore(b, srv, testPrefix(b)))
		h := g.Handler(okHandler)
		tok := mintN(as, 1)[0]
		d := newDurations(b)
		benchServe(b, h, tok, &d)
		d, _ = d[:0], cs.calls.Swap(0)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			benchServe(b, h, tok, &d)
		}
		b.StopTimer()
		b.ReportMetric(float64(d.p99()), "p99-ns")
		reportStore(b, cs)
	})

	b.Run("redis-only", func(b *testing.B) {
		prefix := testPrefix(b)
		filler, _ := benchGuard(b, as, newStore(b, srv, prefix))
		g, cs := benchGuard(b, as, newStore(b, srv, prefix))
		fh, h := filler.Handler(okHandler), g.Handler(okHandler)
		// Every iteration's token put in Redis by the other Guard, before
		// the timer: this one has never seen any of them.
		tokens := mintN(as, b.N)
		d := newDurations(b)
		for _, tok := range tokens {
			benchServe(b, fh, tok, &d)
		}
		calls := as.Requests(oauthtest.EndpointIntrospect)
		d = d[:0]
		b.ReportAllocs()
		b.ResetTimer()
		for _, tok := range tokens {
			benchServe(b, h, tok, &d)
		}
		b.StopTimer()
		if n := as.Requests(oauthtest.EndpointIntrospect) - calls; n != 0 {
			b.Fatalf("%d introspection calls for answers in Redis", n)
		}
		b.ReportMetric(float64(d.p99()), "p99-ns")
		reportStore(b, cs)
	})

	for _, c := range []struct {
		name  string
		store bool
	}{{"new", true}, {"new-no-store", false}} {
		b.Run(c.name, func(b *testing.B) {
			var store tokenguard.SharedStore
			if c.store {
				store = newStore(b, srv, testPrefix(b))
			}
			g, cs := benchGuard(b, as, store)
			h := g.Handler(okHandler)
			tokens := mintN(as, b.N)
			d := newDurations(b)
			calls := as.Requests(oauthtest.EndpointIntrospect)
			b.ReportAllocs()
			b.ResetTimer()
			for _, tok := range tokens {
				benchServe(b, h, tok, &d)
			}
			b.StopTimer()
			if n := as.Requests(oauthtest.EndpointIntrospect) - calls; n != b.N {
				b.Fatalf("%d introspection calls for %d new tokens", n, b.N)
			}
			b.ReportMetric(float64(d.p99()), "p99-ns")
			reportStore(b, cs)
		})
	}

	b.Run("redis-down", func(b *testing.B) {
		down, err := startServer(0)
		if err != nil {
			b.Fatal(err)
		}
		defer down.stop()
		g, cs := benchGuard(b, as, newStore(b, down, testPrefix(b)))
		h := g.Handler(okHandler)
		// Connected, then killed: the replica's pool held a live
		// connection when Redis died.
		if _, err := cs.Get(context.Background(), "warm"); err != nil {
			b.Fatal(err)
		}
		down.kill()
		tokens := mintN(as, b.N)
		d := newDurations(b)
		inStore := newDurations(b)
		cs.reset()
		b.ReportAllocs()
		b.ResetTimer()
		for _, tok := range tokens {
			before := cs.spent.Load()
			benchServe(b, h, tok, &d)
			inStore = append(inStore, time.Duration(cs.spent.Load()-before))
		}
		b.StopTimer()
		b.ReportMetric(float64(d.mean()), "mean-ns")
		b.ReportMetric(float64(d.p99()), "p99-ns")
		b.ReportMetric(float64(inStore.mean()), "store-ns/op")
		b.ReportMetric(float64(inStore.p99()), "store-p99-ns")
		reportStore(b, cs)
	})
}
