package tgotel

import (
	"context"
	"fmt"
	"math"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/tokenguard/tokenguard"
)

// The attribute sets of the cache instruments.
var (
	jwtHit            = metric.WithAttributes(keyCache.String("jwt"), keyResult.String("hit"))
	jwtMiss           = metric.WithAttributes(keyCache.String("jwt"), keyResult.String("miss"))
	introspectionHit  = metric.WithAttributes(keyCache.String("introspection"), keyResult.String("hit"))
	introspectionMiss = metric.WithAttributes(keyCache.String("introspection"), keyResult.String("miss"))
	jwtCache          = metric.WithAttributes(keyCache.String("jwt"))
	introspectCache   = metric.WithAttributes(keyCache.String("introspection"))
	refusedCache      = metric.WithAttributes(keyCache.String("refused"))
)

// Observe registers the instruments that read g's pull views at each
// collection: its caches (Guard.TokenCacheStats, Guard.IntrospectionStats)
// and the age of each issuer's key set (Guard.Health). The function it
// returns unregisters them; call it when g is closed. The Guards observed
// at once by one Instrumentation add their counts into the same series
// (so observing a Guard twice counts it twice); key ages are per issuer.
func (in *Instrumentation) Observe(g *tokenguard.Guard) (unregister func() error, err error) {
	if g == nil {
		return nil, fmt.Errorf("tgotel: Observe of a nil Guard")
	}
	reg, err := in.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		tc := g.TokenCacheStats()
		ic := g.IntrospectionStats()
		o.ObserveInt64(in.cacheLookups, clamp(tc.Hits), jwtHit)
		o.ObserveInt64(in.cacheLookups, clamp(tc.Misses), jwtMiss)
		o.ObserveInt64(in.cacheLookups, clamp(ic.Hits), introspectionHit)
		o.ObserveInt64(in.cacheLookups, clamp(ic.Misses), introspectionMiss)
		o.ObserveInt64(in.cacheEvictions, clamp(tc.Evictions), jwtCache)
		o.ObserveInt64(in.cacheEvictions, clamp(ic.Evictions), introspectCache)
		o.ObserveInt64(in.cacheEntries, int64(tc.Entries), jwtCache)
		o.ObserveInt64(in.cacheEntries, int64(ic.Entries), introspectCache)
		o.ObserveInt64(in.cacheEntries, int64(tc.RefusedEntries), refusedCache)
		o.ObserveInt64(in.introspectionCalls, ic.Calls)
		h := g.Health()
		sets := h.Issuers
		if !in.skipIssuer {
			// The tenants of patterns too, unless their number is why the
			// issuer is left off.
			sets = append(sets, h.Tenants...)
		}
		for _, ih := range sets {
			if ih.Keys != tokenguard.KeysNone && ih.KeysAge > 0 {
				o.ObserveFloat64(in.jwksAge, ih.KeysAge.Seconds(),
					metric.WithAttributeSet(attribute.NewSet(keyIssuer.String(ih.Issuer))))
			}
		}
		return nil
	}, in.cacheLookups, in.cacheEvictions, in.cacheEntries, in.introspectionCalls, in.jwksAge)
	if err != nil {
		return nil, fmt.Errorf("tgotel: %w", err)
	}
	return reg.Unregister, nil
}

// clamp is n as an int64 (a counter past 2^63 stays there).
func clamp(n uint64) int64 {
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}
