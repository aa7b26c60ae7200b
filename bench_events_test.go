package tokenguard_test

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/tokenguard/tokenguard"
)

// BenchmarkEventsHit is a cached JWT through Authenticate with no Events
// (the baseline), with a Decision callback that counts, and with every
// callback set: what listening costs on the hit path, in time and in
// allocations (none: Decision is passed by value).
func BenchmarkEventsHit(b *testing.B) {
	var n atomic.Int64
	count := func(context.Context, tokenguard.Decision) { n.Add(1) }
	for _, c := range []struct {
		name   string
		events tokenguard.Events
	}{
		{"none", tokenguard.Events{}},
		{"decision", tokenguard.Events{Decision: count}},
		{"all", tokenguard.Events{
			Decision: count,
			Upstream: func(ctx context.Context, _ tokenguard.UpstreamCall) (context.Context, func(tokenguard.UpstreamResult)) {
				return ctx, nil
			},
			KeyRefetchLimited: func(context.Context, string) {},
			Breaker:           func(context.Context, string, bool) {},
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			env := newBenchEnvWith(b, tokenguard.Config{Events: c.events})
			r := httptest.NewRequest("GET", "/orders", nil)
			r.Header.Set("Authorization", "Bearer "+env.tokens["ES256"])
			if _, err := env.g.Authenticate(r); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := env.g.Authenticate(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
