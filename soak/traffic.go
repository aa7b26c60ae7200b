package main

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenguard/tokenguard/oauthtest"
)

// kind is one kind of request of the mix.
type kind int

const (
	jwtValid         kind = iota // fresh, signed by a known key
	jwtCached                    // accepted before, key still known: a token-cache hit
	opaqueValid                  // from the pool: cached or not, introspection says active
	jwtExpired                   // known key, exp 5 minutes ago (leeway is 30s)
	jwtWrongAud                  // known key, another audience
	jwtForgedKid                 // other server's key, this issuer's iss and a known kid
	jwtForgedForeign             // other server's key and kid, this issuer's iss
	jwtUnsecured                 // alg none, this issuer's iss
	jwtRetired                   // fresh, signed by a key the Guard dropped
	jwtRetiredCached             // accepted while its key was known; the key was dropped since
	opaqueRevoked                // revoked before it was ever sent
	garbageOpaque                // random base64url: opaque-shaped, introspected
	garbageJWS                   // "eyJ…" in three parts that do not decode
	garbageChars                 // characters a bearer token cannot have
	nKinds
)

type kindSpec struct {
	name   string
	weight int
	accept bool // must be accepted (200 with the token's subject)
	// needsIntrospection: a 503 is excused inside an introspection fault
	// window (tokens that must be accepted only).
	needsIntrospection bool
	// refuse is, for tokens that must be refused, every status that is a
	// right answer: exactly 401 when the Guard can decide alone, 503 too
	// when deciding needs a server (a key-set fetch for an unknown kid,
	// or introspection).
	refuse []int
}

var kinds = [nKinds]kindSpec{
	jwtValid:         {name: "jwt-valid", weight: 18, accept: true},
	jwtCached:        {name: "jwt-cached", weight: 18, accept: true},
	opaqueValid:      {name: "opaque-valid", weight: 16, accept: true, needsIntrospection: true},
	jwtExpired:       {name: "jwt-expired", weight: 5, refuse: []int{401}},
	jwtWrongAud:      {name: "jwt-wrong-audience", weight: 5, refuse: []int{401}},
	jwtForgedKid:     {name: "jwt-forged-known-kid", weight: 5, refuse: []int{401}},
	jwtForgedForeign: {name: "jwt-forged-foreign-kid", weight: 5, refuse: []int{401, 503}},
	jwtUnsecured:     {name: "jwt-alg-none", weight: 3, refuse: []int{401}},
	jwtRetired:       {name: "jwt-retired-key", weight: 4, refuse: []int{401, 503}},
	jwtRetiredCached: {name: "jwt-retired-key-cached", weight: 4, refuse: []int{401, 503}},
	opaqueRevoked:    {name: "opaque-revoked", weight: 6, refuse: []int{401, 503}},
	garbageOpaque:    {name: "garbage-opaque", weight: 5, refuse: []int{401, 503}},
	garbageJWS:       {name: "garbage-jws", weight: 3, refuse: []int{401}},
	garbageChars:     {name: "garbage-chars", weight: 3, refuse: []int{400}},
}

var totalWeight = func() int {
	n := 0
	for _, k := range kinds {
		n += k.weight
	}
	return n
}()

func pick(r *rand.Rand) kind {
	n := r.IntN(totalWeight)
	for k := range kinds {
		if n < kinds[k].weight {
			return kind(k)
		}
		n -= kinds[k].weight
	}
	panic("unreachable")
}

// clientLoop sends requests until stop or until the request budget is spent.
func (s *soak) clientLoop(stop <-chan struct{}, id uint64) {
	r := rand.New(rand.NewPCG(id, uint64(time.Now().UnixNano())))
	for {
		select {
		case <-stop:
			return
		default:
		}
		if s.sent.Add(1) > s.o.MaxRequests {
			return
		}
		for !s.one(r, pick(r)) {
			// That kind cannot be sent now (no dropped key yet, every key
			// busy retiring): pick again.
		}
	}
}

// one builds a request of kind k, sends it and judges the answer. It
// returns false, sending nothing, if k cannot be sent now.
func (s *soak) one(r *rand.Rand, k kind) bool {
	var (
		tok  string
		want string // subject the API must answer, for tokens that must be accepted
		k0   *key   // known key held for the request
	)
	switch k {
	case jwtValid, jwtCached, jwtExpired, jwtWrongAud, jwtForgedKid:
		if k0 = s.keys.acquire(r); k0 == nil {
			return false
		}
		defer k0.mu.RUnlock()
	}
	now := time.Now()
	switch k {
	case jwtValid:
		want = s.subject("u")
		tok = s.as.MintWith(oauthtest.MintOptions{KeyID: k0.kid, Claims: oauthtest.Claims{"sub": want, "scope": "soak"}})
	case jwtCached:
		t, ok := k0.recall(r)
		if !ok {
			return false
		}
		tok, want = t.token, t.sub
	case opaqueValid:
		t := s.opaque[s.next.Add(1)%uint64(len(s.opaque))]
		tok, want = t.token, t.sub
	case jwtExpired:
		tok = s.as.MintWith(oauthtest.MintOptions{KeyID: k0.kid, Claims: oauthtest.Claims{
			"sub": s.subject("e"), "iat": now.Add(-time.Hour).Unix(), "exp": now.Add(-5 * time.Minute).Unix()}})
	case jwtWrongAud:
		tok = s.as.MintWith(oauthtest.MintOptions{KeyID: k0.kid, Claims: oauthtest.Claims{
			"sub": s.subject("a"), "aud": "https://elsewhere.example/api"}})
	case jwtForgedKid:
		tok = s.evil.MintWith(oauthtest.MintOptions{Alg: k0.alg, Header: map[string]any{"kid": k0.kid},
			Claims: oauthtest.Claims{"iss": s.as.Issuer, "aud": s.as.Resource(), "sub": s.subject("f")}})
	case jwtForgedForeign:
		tok = s.evil.MintWith(oauthtest.MintOptions{Alg: algorithms[r.IntN(len(algorithms))],
			Claims: oauthtest.Claims{"iss": s.as.Issuer, "aud": s.as.Resource(), "sub": s.subject("f")}})
	case jwtUnsecured:
		var err error
		tok, err = oauthtest.SignJWT(map[string]any{"alg": "none", "typ": "at+jwt"}, map[string]any{
			"iss": s.as.Issuer, "aud": s.as.Resource(), "sub": s.subject("n"),
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}, nil, "none")
		if err != nil {
			panic(err)
		}
	case jwtRetired:
		g := s.keys.gone(r)
		if g == nil {
			return false
		}
		tok = s.as.MintWith(oauthtest.MintOptions{KeyID: g.kid, Claims: oauthtest.Claims{"sub": s.subject("d")}})
	case jwtRetiredCached:
		g := s.keys.gone(r)
		if g == nil {
			return false
		}
		t, ok := g.recall(r)
		if !ok {
			return false
		}
		tok = t.token
	case opaqueRevoked:
		tok = s.revoked[r.IntN(len(s.revoked))]
	case garbageOpaque:
		tok = randomB64(r, 16+r.IntN(48))
	case garbageJWS:
		tok = "eyJ" + randomB64(r, 10+r.IntN(30)) + "." + randomB64(r, 10+r.IntN(60)) + "." + randomB64(r, 10+r.IntN(80))
	case garbageChars:
		const bad = "!#$%&*,;:<>?@[]^{|}'`"
		b := []byte(randomB64(r, 8+r.IntN(32)))
		for range 1 + r.IntN(3) {
			b[r.IntN(len(b))] = bad[r.IntN(len(bad))]
		}
		b[0] = bad[r.IntN(len(bad))] // never all valid
		tok = string(b)
	}
	ph := s.phases.current()
	out := s.send(tok)
	s.judge(k, want, ph, out)
	if k == jwtValid && out.status == 200 && out.body == want {
		k0.remember(issued{token: tok, sub: want})
	}
	return true
}

// judge counts the answer and any wrong decision.
func (s *soak) judge(k kind, want string, ph *phase, out outcome) {
	spec := &kinds[k]
	s.stats.byKind[k][slotOf(out.status)].Add(1)
	ph.requests.Add(1)
	if out.status == 503 {
		if spec.accept {
			ph.unavailValid.Add(1)
		} else {
			ph.unavailBad.Add(1)
		}
	}
	at := s.since(out.sent)
	switch {
	case spec.accept && out.status == 200:
		if out.body != want {
			s.stats.fail(&s.stats.wrongPrincipals, at, ph.name, spec.name, out)
		}
	case spec.accept && out.status == 503 && spec.needsIntrospection:
		if ok, late := s.phases.excused(out.sent, out.recv); !ok {
			// Not while the server this token needs was failing, nor in
			// the allowance after it.
			if late {
				s.stats.late503.Add(1)
			}
			s.stats.fail(&s.stats.wrongRejects, at, ph.name, spec.name, out)
		}
	case spec.accept:
		s.stats.fail(&s.stats.wrongRejects, at, ph.name, spec.name, out)
	case out.status >= 200 && out.status < 300:
		s.stats.fail(&s.stats.wrongAccepts, at, ph.name, spec.name, out)
	case !slices.Contains(spec.refuse, out.status):
		// Refused, so not a wrong decision, but not the answer it must get
		// (a 503 anyone can cause, or no answer at all).
		s.stats.fail(&s.stats.unexpected, at, ph.name, spec.name, out)
	}
}

func (s *soak) since(t time.Time) time.Duration { return t.Sub(s.began) }

func randomB64(r *rand.Rand, n int) string {
	b := make([]byte, (n*3+3)/4)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return base64.RawURLEncoding.EncodeToString(b)[:n]
}

func decodeSegment(seg string) string {
	b, _ := base64.RawURLEncoding.DecodeString(seg)
	return string(b)
}

// Status slots of the per-kind tally.
const (
	slot200 = iota
	slot400
	slot401
	slot403
	slot503
	slotOther
	slotNone // no answer
	nSlots
)

var slotNames = [nSlots]string{"200", "400", "401", "403", "503", "other", "none"}

func slotOf(status int) int {
	switch status {
	case 200:
		return slot200
	case 400:
		return slot400
	case 401:
		return slot401
	case 403:
		return slot403
	case 503:
		return slot503
	case 0:
		return slotNone
	}
	return slotOther
}

// stats are the run's counters.
type stats struct {
	byKind [nKinds][nSlots]atomic.Int64

	wrongAccepts, wrongRejects, wrongPrincipals, unexpected atomic.Int64
	late503                                                 atomic.Int64 // of wrongRejects: 503s past a fault's allowance

	control     atomic.Int64 // probe and recovery requests, not judged by kind
	probeMisses atomic.Int64 // probes answered before the Guard caught up

	interrupted               atomic.Bool
	trafficStart, trafficStop time.Time
	elapsed                   time.Duration

	mu       sync.Mutex
	examples []string // the first few wrong answers, without tokens
}

const maxExamples = 20

func (st *stats) fail(counter *atomic.Int64, at time.Duration, phase, what string, out outcome) {
	counter.Add(1)
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.examples) >= maxExamples {
		return
	}
	answer := fmt.Sprintf("status %d", out.status)
	if out.err != nil {
		answer = "error: " + out.err.Error()
	}
	st.examples = append(st.examples, fmt.Sprintf("t=%.3fs phase=%s %s: %s after %s",
		at.Seconds(), phase, what, answer, out.recv.Sub(out.sent).Round(time.Millisecond)))
}
