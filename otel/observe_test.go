package tgotel_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Observe reports the Guard's pull views at each collection: the caches'
// look-ups, evictions and sizes, the introspection calls and each
// issuer's key-set age; after unregister, none of them.
func TestObserve(t *testing.T) {
	e := newEnv(t, setup{})
	unregister, err := e.in.Observe(e.g)
	if err != nil {
		t.Fatal(err)
	}
	h := e.g.Handler(ok)
	jwt, opaque := e.as.Mint(nil), e.as.MintOpaque(nil)
	for _, tok := range []string{jwt, jwt, jwt, forge(jwt), forge(jwt), opaque, opaque} {
		request(nil, h, tok)
	}
	e.clock.Advance(90 * time.Second)

	tc, ic := e.g.TokenCacheStats(), e.g.IntrospectionStats()
	if tc.Hits != 2 || tc.Misses == 0 || ic.Hits != 1 || ic.Misses == 0 || ic.Calls != 1 || tc.Entries != 1 || ic.Entries != 1 || tc.RefusedEntries != 1 {
		t.Fatalf("the Guard's views: %+v %+v", tc, ic)
	}
	ms := e.collect(t)
	wantPoints(t, ms, "tokenguard.cache.lookups", map[string]float64{
		cache("jwt", "hit"): 2, cache("jwt", "miss"): float64(tc.Misses),
		cache("introspection", "hit"): 1, cache("introspection", "miss"): float64(ic.Misses),
	})
	wantPoints(t, ms, "tokenguard.cache.evictions", map[string]float64{cache("jwt", ""): 0, cache("introspection", ""): 0})
	wantPoints(t, ms, "tokenguard.cache.entry.count", map[string]float64{cache("jwt", ""): 1, cache("introspection", ""): 1, cache("refused", ""): 1})
	wantPoints(t, ms, "tokenguard.introspection.calls", map[string]float64{"": 1})
	wantPoints(t, ms, "tokenguard.jwks.age", map[string]float64{set("tokenguard.issuer", e.as.Issuer): 90})
	for name, want := range map[string]struct {
		unit      string
		monotonic bool
	}{
		"tokenguard.cache.lookups":       {"{lookup}", true},
		"tokenguard.cache.evictions":     {"{eviction}", true},
		"tokenguard.cache.entry.count":   {"{entry}", false},
		"tokenguard.introspection.calls": {"{call}", true},
	} {
		m := ms[name]
		s, isSum := m.Data.(metricdata.Sum[int64])
		if m.Unit != want.unit || m.Description == "" || !isSum || s.IsMonotonic != want.monotonic {
			t.Errorf("%s: unit %q, description %q, %T monotonic %v", name, m.Unit, m.Description, m.Data, s.IsMonotonic)
		}
	}
	if m := ms["tokenguard.jwks.age"]; m.Unit != "s" {
		t.Errorf("jwks.age: unit %q", m.Unit)
	}
	if _, isGauge := ms["tokenguard.jwks.age"].Data.(metricdata.Gauge[float64]); !isGauge {
		t.Errorf("jwks.age: %T", ms["tokenguard.jwks.age"].Data)
	}

	if err := unregister(); err != nil {
		t.Fatal(err)
	}
	ms = e.collect(t)
	for _, name := range []string{"tokenguard.cache.lookups", "tokenguard.cache.evictions", "tokenguard.cache.entry.count", "tokenguard.introspection.calls", "tokenguard.jwks.age"} {
		if m, found := ms[name]; found && len(points(t, m)) > 0 {
			t.Errorf("%s after unregister: %v", name, points(t, m))
		}
	}
	if _, found := ms["tokenguard.decisions"]; !found {
		t.Error("the decisions went with the callbacks")
	}
}

// cache is the attributes of a cache's series.
func cache(name, result string) string {
	return set("tokenguard.cache.name", name, "tokenguard.cache.result", result)
}

// A key set whose refresh failed is stale, and its age goes on; a
// missing one has none; a full cache's evictions are counted.
func TestObserveStaleKeysAndEvictions(t *testing.T) {
	e := newEnv(t, setup{config: func(c *tokenguard.Config) { c.TokenCacheSize = 2 }})
	unregister, err := e.in.Observe(e.g)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unregister() }()
	h := e.g.Handler(ok)
	for range 3 {
		request(nil, h, e.as.Mint(nil))
	}
	e.clock.Advance(time.Hour)
	e.as.RotateKey("RS256")
	e.as.SetFault(oauthtest.EndpointJWKS, &oauthtest.Fault{Status: 500})
	if got := request(nil, h, e.as.Mint(nil)); got == 200 {
		t.Fatal("a token signed with a key that could not be fetched passed")
	}
	if hs := e.g.Health().Issuers; len(hs) != 1 || hs[0].Keys != tokenguard.KeysStale {
		t.Fatalf("health %+v", hs)
	}
	ms := e.collect(t)
	wantPoints(t, ms, "tokenguard.jwks.age", map[string]float64{set("tokenguard.issuer", e.as.Issuer): 3600})
	wantPoints(t, ms, "tokenguard.cache.evictions", map[string]float64{cache("jwt", ""): 1, cache("introspection", ""): 0})
	wantPoints(t, ms, "tokenguard.cache.entry.count", map[string]float64{cache("jwt", ""): 2, cache("introspection", ""): 0, cache("refused", ""): 0})

	// Past MaxKeyStaleness the set is missing: its age keeps growing (the
	// last good set's), which is what an alert on the age needs.
	e.clock.Advance(24 * time.Hour)
	if hs := e.g.Health().Issuers; len(hs) != 1 || hs[0].Keys != tokenguard.KeysMissing {
		t.Fatalf("health %+v", hs)
	}
	wantPoints(t, e.collect(t), "tokenguard.jwks.age", map[string]float64{set("tokenguard.issuer", e.as.Issuer): 3600 + 24*3600})
}

// Two Guards observed by one Instrumentation add their counts up.
func TestObserveTwoGuards(t *testing.T) {
	e := newEnv(t, setup{})
	cfg := e.as.GuardConfig()
	cfg.Events = e.in.Events()
	g2, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	for _, g := range []*tokenguard.Guard{e.g, g2} {
		unregister, err := e.in.Observe(g)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = unregister() }()
	}
	tok := e.as.Mint(nil)
	request(nil, e.g.Handler(ok), tok)
	request(nil, g2.Handler(ok), tok)
	request(nil, g2.Handler(ok), tok)
	wantPoints(t, e.collect(t), "tokenguard.cache.lookups", map[string]float64{
		cache("jwt", "hit"): 1, cache("jwt", "miss"): 2, cache("introspection", "hit"): 0, cache("introspection", "miss"): 0,
	})
}
