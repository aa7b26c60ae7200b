package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Upstream endpoints, as the Guard's HTTP client sees them.
const (
	epJWKS = iota
	epIntrospect
	epOther // discovery documents
	nEndpoints
)

var endpointNames = [nEndpoints]string{"jwks", "introspect", "other"}

// upstream is the Guard's transport: it refuses any host but the
// authorization server's, counts calls per endpoint and per phase, and
// knows which calls are in flight, so that the end of a fault can be told
// from the end of the calls it caught.
type upstream struct {
	base    http.RoundTripper
	host    string // host:port of the authorization server
	phase   func() *phase
	refused atomic.Int64

	mu        sync.Mutex
	seq       uint64
	open      map[uint64]int // call id → endpoint
	lastStart [nEndpoints]time.Time
}

func newUpstream(base http.RoundTripper, asURL string, phase func() *phase) *upstream {
	u, err := url.Parse(asURL)
	if err != nil {
		panic(err)
	}
	return &upstream{base: base, host: u.Host, phase: phase, open: map[uint64]int{}}
}

func endpointOf(u *url.URL) int {
	switch {
	case strings.HasSuffix(u.Path, "/jwks"):
		return epJWKS
	case strings.HasSuffix(u.Path, "/introspect"):
		return epIntrospect
	}
	return epOther
}

func (u *upstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != u.host {
		u.refused.Add(1)
		return nil, fmt.Errorf("soak: refusing an upstream call to %s", r.URL.Host)
	}
	ep := endpointOf(r.URL)
	u.phase().calls[ep].Add(1)
	u.mu.Lock()
	u.seq++
	id := u.seq
	u.open[id] = ep
	u.lastStart[ep] = time.Now()
	u.mu.Unlock()
	resp, err := u.base.RoundTrip(r)
	if err != nil {
		u.finish(id)
		return nil, err
	}
	resp.Body = &trackedBody{ReadCloser: resp.Body, done: func() { u.finish(id) }}
	return resp, nil
}

func (u *upstream) finish(id uint64) {
	u.mu.Lock()
	delete(u.open, id)
	u.mu.Unlock()
}

// startedAfter reports whether a call to ep started after t.
func (u *upstream) startedAfter(ep int, t time.Time) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.lastStart[ep].After(t)
}

// settle waits until every call to ep that started before now has ended
// (its body closed), or until deadline; it reports whether they did.
func (u *upstream) settle(ep int, deadline time.Time) bool {
	u.mu.Lock()
	upTo := u.seq
	u.mu.Unlock()
	for {
		busy := false
		u.mu.Lock()
		for id, e := range u.open {
			if e == ep && id <= upTo {
				busy = true
				break
			}
		}
		u.mu.Unlock()
		if !busy {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// trackedBody reports the end of a call when its body is closed.
type trackedBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *trackedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}
