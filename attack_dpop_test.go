package tokenguard_test

import (
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// dpopSetup is a DPoPAllowed Guard, a bound token of victim's key and a
// sender of requests to /orders.
func dpopSetup(t *testing.T) (g *tokenguard.Guard, url string, send func(token, proof string) int) {
	t.Helper()
	as := shared(t)
	g = newGuard(t, as, tokenguard.Config{Resource: as.Resource(), Issuer: as.Issuer, DPoP: tokenguard.DPoPConfig{Mode: tokenguard.DPoPAllowed}})
	url = strings.TrimSuffix(as.Resource(), "/api") + "/orders"
	h := g.Handler(okHandler)
	send = func(token, proof string) int {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "DPoP "+token)
		r.Header.Set("DPoP", proof)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	return g, url, send
}

// A captured proof sent many times at once is accepted once: the replay
// check and the record of the jti are one step, not a look-up followed
// by a store another request can overtake.
func TestAttackDPoPConcurrentReplay(t *testing.T) {
	as := shared(t)
	_, url, send := dpopSetup(t)
	victim := newDPoPKey(t)
	token := as.Mint(oauthtest.Claims{"sub": "victim", "cnf": map[string]any{"jkt": victim.jkt}})
	const rounds, senders = 200, 8
	for i := range rounds {
		proof := victim.proof(t, "GET", url, token, func(h, c map[string]any) { c["jti"] = c["jti"].(string) + "-" + string(rune('a'+i%26)) })
		var accepted atomic.Int32
		var start, done sync.WaitGroup
		start.Add(1)
		for range senders {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				if send(token, proof) == 200 {
					accepted.Add(1)
				}
			}()
		}
		start.Done()
		done.Wait()
		if n := accepted.Load(); n != 1 {
			t.Fatalf("round %d: one proof accepted %d times", i, n)
		}
	}
}

// An attacker with a bound token of its own can sign as many valid proofs
// as it likes; flooding the replay store with them must not make room for
// a captured proof of another client to be accepted again.
func TestAttackDPoPReplayAfterFlood(t *testing.T) {
	defer tokenguard.SetDPoPReplayCapacity(64)()
	as := shared(t)
	_, url, send := dpopSetup(t)
	victim, mallory := newDPoPKey(t), newDPoPKey(t)
	vtok := as.Mint(oauthtest.Claims{"sub": "victim", "cnf": map[string]any{"jkt": victim.jkt}})
	mtok := as.Mint(oauthtest.Claims{"sub": "mallory", "cnf": map[string]any{"jkt": mallory.jkt}})
	captured := victim.proof(t, "GET", url, vtok, nil)
	if code := send(vtok, captured); code != 200 {
		t.Fatalf("victim's request: %d", code)
	}
	for i := range 1000 {
		proof := mallory.proof(t, "GET", url, mtok, func(h, c map[string]any) {
			c["jti"] = "flood-" + strings.Repeat("x", i%7) + string(rune('A'+i%50)) + string(rune('A'+i/50))
		})
		send(mtok, proof)
	}
	if code := send(vtok, captured); code == 200 {
		t.Fatal("a captured proof replayed after the replay store was flooded")
	}
	// The flood does not lock a client out for long: a proof with a later
	// iat than every flooded entry still gets in.
	fresh := victim.proof(t, "GET", url, vtok, func(h, c map[string]any) { c["iat"] = time.Now().Add(5 * time.Second).Unix() })
	if code := send(vtok, fresh); code != 200 {
		t.Fatalf("a fresh proof after the flood: %d", code)
	}
}
