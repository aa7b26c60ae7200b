package tokenguard_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// Events tell what the Guard decides and which calls it makes to the
// authorization server; here they are counted by path and outcome, as a
// metrics exporter would (the otel module does it with OpenTelemetry).
func ExampleConfig_events() {
	as := oauthtest.NewServer(oauthtest.Options{})
	defer as.Close()
	var mu sync.Mutex
	counts := map[string]int{}
	cfg := as.GuardConfig()
	cfg.Events = tokenguard.Events{
		Decision: func(_ context.Context, d tokenguard.Decision) {
			mu.Lock()
			defer mu.Unlock()
			counts[fmt.Sprintf("%s %d %s", d.Path, d.Status, string(d.Reason))]++
		},
		Upstream: func(ctx context.Context, c tokenguard.UpstreamCall) (context.Context, func(tokenguard.UpstreamResult)) {
			return ctx, func(r tokenguard.UpstreamResult) {
				fmt.Printf("%s (%s): %d, %d keys\n", c.Kind, c.Trigger, r.Status, r.Keys)
			}
		},
	}
	g, err := tokenguard.New(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	h := g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	token := as.Mint(nil)
	for _, auth := range []string{"Bearer " + token, "Bearer " + token, ""} {
		r := httptest.NewRequest("GET", "/orders", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	fmt.Println(counts["jwt 200 "], counts["jwt_cached 200 "], counts["none 401 token_missing"])
	// Output:
	// discovery (start): 200, 0 keys
	// jwks (start): 200, 1 keys
	// 1 1 1
}
