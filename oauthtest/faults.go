package oauthtest

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// A Fault replaces or delays the responses of one endpoint; see
// [Server.SetFault].
type Fault struct {
	// Status is the status code of the replacement response. This defaults
	// to 0, which means no replacement: after Delay the endpoint answers
	// normally, and Body, ContentType and Header are ignored.
	Status int

	// Delay holds each request this long before it is answered. A delayed
	// request is aborted (the connection is dropped) when its context is
	// cancelled or the server is closed. This defaults to no delay.
	Delay time.Duration

	// Body is the body of the replacement response, sent as is, so it may be
	// malformed JSON or something else entirely. This defaults to empty.
	Body string

	// ContentType is the Content-Type of the replacement response. This
	// defaults to "application/json" when Body is not empty and Header has no
	// Content-Type, and to none otherwise.
	ContentType string

	// Header holds headers added to the replacement response, such as
	// Retry-After or WWW-Authenticate. A key with a nil value suppresses
	// that header (for example Content-Type). This defaults to none.
	Header http.Header

	// Times limits the fault to this many requests, after which the
	// endpoint answers normally again. This defaults to 0: every request
	// until the fault is cleared.
	Times int
}

type activeFault struct {
	Fault
	left int // requests left when Times > 0
}

// SetFault makes every request to the named endpoint (one of the Endpoint
// constants, such as "jwks") fail or wait as f describes; nil clears it.
// f is copied. Requests are counted by [Server.Requests] whether or not a
// fault applies. SetFault panics on an unknown endpoint name or an invalid
// Status.
func (s *Server) SetFault(endpoint string, f *Fault) {
	mustEndpoint(endpoint)
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == nil {
		delete(s.faults, endpoint)
		return
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 999) {
		panic(fmt.Sprintf("oauthtest: SetFault: invalid status %d", f.Status))
	}
	c := &activeFault{Fault: *f, left: f.Times}
	c.Header = f.Header.Clone()
	s.faults[endpoint] = c
}

// takeFault returns a copy of the fault for endpoint, consuming one use.
// It must be called with s.mu held.
func (s *Server) takeFault(endpoint string) *Fault {
	af := s.faults[endpoint]
	if af == nil {
		return nil
	}
	if af.Times > 0 {
		af.left--
		if af.left <= 0 {
			delete(s.faults, endpoint)
		}
	}
	f := af.Fault
	return &f
}

// applyFault delays the request, then writes the replacement response if
// there is one, and reports whether it did. f's Header is shared with the
// stored fault and only read here.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f *Fault) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			panic(http.ErrAbortHandler)
		case <-s.closing:
			panic(http.ErrAbortHandler)
		}
	}
	if f.Status == 0 {
		return false
	}
	h := w.Header()
	for name, values := range f.Header {
		name = http.CanonicalHeaderKey(name)
		if values == nil {
			h[name] = nil
			continue
		}
		h[name] = append(h[name], values...)
	}
	if f.ContentType != "" {
		h.Set("Content-Type", f.ContentType)
	} else if _, set := h["Content-Type"]; !set && f.Body != "" {
		h.Set("Content-Type", "application/json")
	}
	w.WriteHeader(f.Status)
	_, _ = io.WriteString(w, f.Body)
	return true
}

// Requests returns how many requests the named endpoint (one of the Endpoint
// constants, such as "jwks") has received since the server started or
// [Server.ResetCounts] was last called, faulted ones included. It panics on an
// unknown endpoint name.
func (s *Server) Requests(endpoint string) int {
	mustEndpoint(endpoint)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[endpoint]
}

// ResetCounts sets every request count to zero and empties the list of
// [Server.IntrospectionCalls]. It leaves the introspection rate limit alone.
func (s *Server) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.counts)
	s.calls = nil
}

func mustEndpoint(name string) {
	if !validEndpoint(name) {
		panic(fmt.Sprintf("oauthtest: unknown endpoint %q", name))
	}
}
