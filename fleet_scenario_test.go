package tokenguard_test

import (
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// The fleet scenario of the issue: 10 replicas behind a round-robin, 1,000
// requests over 50 distinct opaque tokens, against a server that allows 5
// introspections a minute. Alone, every replica asks about every token it
// sees first, so the server's limit turns most new tokens into 503s;
// sharing answers, the fleet asks once per token. The budget here is
// raised to 50 a minute so that the shared fleet can see every token: the
// claim is calls <= distinct tokens and no 503 the budget does not force.
func TestFleetScenario(t *testing.T) {
	run := func(t *testing.T, shared bool, limit int) (calls, ok, unavailable int) {
		as := newAS(t, oauthtest.Options{IntrospectionRateLimit: limit})
		as.RegisterClient(rsID, rsSecret)
		store := newMemStore()
		guards := make([]*tokenguard.Guard, 10)
		for i := range guards {
			cfg := tokenguard.Config{
				Issuer:        as.Issuer,
				Audience:      as.Resource(),
				Introspection: tokenguard.IntrospectionConfig{ClientID: rsID, ClientSecret: rsSecret},
			}
			if shared {
				cfg.Fleet = tokenguard.FleetConfig{Store: store, Key: fleetKey, Budget: limit, BudgetInterval: time.Minute}
			}
			guards[i] = newGuardAt(t, cfg)
		}
		tokens := make([]string, 50)
		for i := range tokens {
			tokens[i] = as.MintOpaque(nil)
		}
		for i := range 1000 {
			g := guards[i%len(guards)]
			// Every replica sees every token: replica i%10 gets token (i/10)%50.
			switch call(g.Handler(okHandler), "Bearer "+tokens[(i/len(guards))%len(tokens)]).Code {
			case 200:
				ok++
			case 503:
				unavailable++
			}
		}
		return as.Requests(oauthtest.EndpointIntrospect), ok, unavailable
	}
	for _, c := range []struct {
		name   string
		shared bool
		limit  int
	}{
		{"alone/limit=5", false, 5},
		{"shared/limit=5", true, 5},
		{"alone/limit=50", false, 50},
		{"shared/limit=50", true, 50},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls, ok, unavailable := run(t, c.shared, c.limit)
			t.Logf("%s: %d introspection calls, %d × 200, %d × 503", c.name, calls, ok, unavailable)
			if c.shared {
				if calls > 50 {
					t.Errorf("shared: %d calls for 50 distinct tokens", calls)
				}
				if c.limit >= 50 && unavailable > 0 {
					t.Errorf("shared, budget enough for every token: %d × 503", unavailable)
				}
				if c.limit == 5 && ok < 5*1000/50 {
					t.Errorf("shared, budget 5: only %d × 200", ok)
				}
			}
		})
	}
}
