package tokenguard

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// KeyState says whether an issuer's key set can vouch for tokens.
type KeyState string

// The key states.
const (
	// KeysFresh: the last fetch succeeded.
	KeysFresh KeyState = "fresh"
	// KeysStale: the last refresh failed; the last good set is used until
	// it is MaxKeyStaleness old.
	KeysStale KeyState = "stale"
	// KeysMissing: no set can vouch for tokens (never fetched, or older
	// than MaxKeyStaleness): its tokens get 503.
	KeysMissing KeyState = "missing"
	// KeysNone: the issuer publishes no key set (it only introspects).
	KeysNone KeyState = "none"
)

// IntrospectionState says whether an issuer's introspection endpoint is
// being called.
type IntrospectionState string

// The introspection states.
const (
	// IntrospectionOff: the issuer does not introspect.
	IntrospectionOff IntrospectionState = "off"
	// IntrospectionOK: calls are made.
	IntrospectionOK IntrospectionState = "ok"
	// IntrospectionSuspended: calls failed in a row and are suspended
	// (new opaque tokens get 503 until a probe succeeds).
	IntrospectionSuspended IntrospectionState = "suspended"
	// IntrospectionHeldBack: the server asked to retry later (429 or 503
	// with Retry-After).
	IntrospectionHeldBack IntrospectionState = "held_back"
)

// IssuerHealth is one trusted issuer's state.
type IssuerHealth struct {
	Issuer string
	// Pattern is the Config.Issuers pattern a tenant matched; "" for an
	// exact issuer.
	Pattern string
	Keys    KeyState
	// KeysAge is how long ago the key set in use was fetched; for
	// KeysMissing, how long ago the last good one was (zero when there
	// never was one); zero for KeysNone.
	KeysAge time.Duration
	// LastError is the last key-set refresh's error, "" when it
	// succeeded; it names URLs, never a token.
	LastError     string
	Introspection IntrospectionState
}

// Health is what a readiness probe needs to know about the Guard's
// authorization servers.
type Health struct {
	// Ready is false when the Guard is still starting (Config.RetryStartup)
	// or when an issuer has neither keys nor working introspection: its
	// tokens would get 503.
	Ready bool
	// Err says why the Guard is not ready; nil when it is.
	Err error
	// Issuers are the exact trusted issuers, sorted.
	Issuers []IssuerHealth
	// Tenants are the issuers Config.Issuers patterns matched that are
	// in use now (discovered, and not yet evicted: at most
	// MaxPatternIssuers), sorted, each with its Pattern. They come and go
	// with the tokens that name them, so they do not decide Ready: one
	// tenant's server down is no reason to take the API out of service.
	Tenants []IssuerHealth
}

// Health reports the state of each trusted issuer's key set and
// introspection endpoint, for a readiness probe or a status page.
func (g *Guard) Health() Health {
	if err := g.Ready(); err != nil {
		return Health{Err: err}
	}
	if in := g.started(); in != nil {
		return in.Health()
	}
	now := g.now()
	h := Health{Ready: true}
	var down []string
	for _, id := range g.issuerOrder {
		ih := g.issuers[id].health(now)
		if ih.Keys != KeysFresh && ih.Keys != KeysStale && ih.Introspection != IntrospectionOK {
			down = append(down, id)
		}
		h.Issuers = append(h.Issuers, ih)
	}
	slices.SortFunc(h.Issuers, func(a, b IssuerHealth) int { return strings.Compare(a.Issuer, b.Issuer) })
	if d := g.dynamic; d != nil {
		for _, id := range d.live.Keys() {
			iss, ok := d.live.Peek(id)
			if !ok {
				continue // evicted meanwhile
			}
			ih := iss.health(now)
			for _, p := range d.patterns {
				if p.match(id) {
					ih.Pattern = p.spec.id
					break
				}
			}
			h.Tenants = append(h.Tenants, ih)
		}
		slices.SortFunc(h.Tenants, func(a, b IssuerHealth) int { return strings.Compare(a.Issuer, b.Issuer) })
	}
	if len(down) > 0 {
		h.Ready = false
		h.Err = errors.Join(ErrUnavailable, errors.New("tokenguard: no keys and no introspection for "+strings.Join(down, ", ")))
	}
	return h
}

// health is iss's state at now.
func (iss *issuer) health(now time.Time) IssuerHealth {
	ih := IssuerHealth{Issuer: iss.id, Keys: KeysNone, Introspection: IntrospectionOff}
	if iss.keys != nil {
		switch {
		case iss.keys.Usable(now) != nil:
			ih.Keys = KeysMissing
			if at := iss.keys.FetchedAt(); !at.IsZero() {
				ih.KeysAge = now.Sub(at) // the set too old to vouch
			}
		case iss.keys.LastError() != nil:
			ih.Keys, ih.KeysAge = KeysStale, now.Sub(iss.keys.FetchedAt())
		default:
			ih.Keys, ih.KeysAge = KeysFresh, now.Sub(iss.keys.FetchedAt())
		}
		if err := iss.keys.LastError(); err != nil {
			ih.LastError = err.Error()
		}
	}
	if iss.intro != nil {
		ih.Introspection = iss.intro.state(now)
	}
	return ih
}

// state is the introspection endpoint's state at now.
func (in *introspector) state(now time.Time) IntrospectionState {
	if until := in.limits.blockedUntil.Load(); until != 0 && time.Unix(0, until).After(now) {
		return IntrospectionHeldBack
	}
	b := &in.limits.breaker
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures >= breakerThreshold {
		return IntrospectionSuspended
	}
	return IntrospectionOK
}
