package tgotel

import (
	"fmt"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/metric"

	"github.com/tokenguard/tokenguard"
)

// The attribute cache keeps at most maxCachedSets sets, still answers
// every key past it (with a set made for the call), and concurrent
// look-ups of new keys agree.
func TestAttrCacheBound(t *testing.T) {
	var c attrCache
	key := func(i int) decisionKey {
		return decisionKey{stage: tokenguard.StageAuthenticate, path: tokenguard.PathJWT, status: 200, issuer: fmt.Sprintf("https://tenant-%d.example", i)}
	}
	issuer := func(a *decisionAttrs) string {
		set := metric.NewAddConfig(a.add).Attributes()
		v, _ := set.Value(keyIssuer)
		return v.AsString()
	}
	n := maxCachedSets + 50
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				k := key((i + w*7) % n)
				if got := issuer(c.get(k)); got != k.issuer {
					t.Errorf("key %s: the set of %s", k.issuer, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := len(*c.sets.Load()); got != maxCachedSets {
		t.Fatalf("%d sets cached, want %d", got, maxCachedSets)
	}
	cached := 0
	for i := range n {
		if c.get(key(i)) == c.get(key(i)) {
			cached++
		}
	}
	if cached != maxCachedSets {
		t.Fatalf("%d keys answered from the cache, want %d", cached, maxCachedSets)
	}
}
