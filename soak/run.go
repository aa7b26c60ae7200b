package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tokenguard/tokenguard"
	"github.com/tokenguard/tokenguard/oauthtest"
)

// algorithms are those of both servers: one key each at the start, and
// rotations go round them.
var algorithms = []string{"RS256", "ES256", "EdDSA"}

const (
	rsClientID     = "soak-resource-server"
	rsClientSecret = "soak-secret-8c1f0e7a"
	path           = "/v1/resource"
	// recoveryTimeout bounds the wait for the Guard to answer again after
	// a fault phase: above the breaker's longest backoff (1 minute, +20 %).
	recoveryTimeout = 90 * time.Second
)

// soak is one run: the servers, the Guard and what the run has seen.
type soak struct {
	o     options
	began time.Time

	as   *oauthtest.Server // the authorization server the Guard trusts
	evil *oauthtest.Server // its keys sign the forgeries
	g    *tokenguard.Guard
	api  *httptest.Server

	client   *http.Client // the clients' (and probes') connection to api
	clientTr *http.Transport
	upTr     *http.Transport // the Guard's connections to as
	up       *upstream

	keys    keyring
	phases  schedule
	opaque  []issued // valid opaque tokens, sent in turn
	revoked []string // revoked opaque tokens
	next    atomic.Uint64
	seq     atomic.Uint64 // makes every minted subject unique
	logs    logCounter

	sent  atomic.Int64 // judged requests started
	stats stats
	mem   memory
}

// run sets everything up, sends traffic for o.Duration, shuts everything
// down and returns the report. An error means the run could not happen.
func run(ctx context.Context, o options) (*report, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	baseline := runtime.NumGoroutine()
	s, err := setUp(o)
	if err != nil {
		return nil, err
	}
	s.traffic(ctx)
	rep := s.collect()
	s.shutDown()
	rep.Goroutines.Baseline = baseline
	rep.Goroutines.AfterClose, rep.Goroutines.Settle = settleGoroutines(baseline, 10*time.Second)
	return rep, nil
}

func setUp(o options) (s *soak, err error) {
	s = &soak{o: o, began: time.Now()}
	defer func() {
		if err != nil {
			s.shutDown()
		}
	}()
	life := max(time.Hour, 2*o.Duration+time.Hour) // no valid token expires during the run
	s.as = oauthtest.NewServer(oauthtest.Options{
		Algorithms:       algorithms,
		TokenLifetime:    life,
		JWKSCacheControl: fmt.Sprintf("public, max-age=%d", int(o.KeyRefresh/time.Second)),
	})
	s.as.RegisterClient(rsClientID, rsClientSecret)
	s.evil = oauthtest.NewServer(oauthtest.Options{Algorithms: algorithms, TokenLifetime: life})

	s.phases.init()
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: loopbackOnly}
	s.upTr = &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second}
	s.up = newUpstream(s.upTr, s.as.URL, s.phases.current)
	s.clientTr = &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: o.Clients + 8, IdleConnTimeout: 30 * time.Second, DisableCompression: true}
	s.client = &http.Client{Transport: s.clientTr, Timeout: o.requestTimeout()}

	startCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.g, err = tokenguard.New(startCtx, tokenguard.Config{
		ResourceMetadataURL: s.as.ResourceMetadataURL(),
		InsecureAllowHTTP:   true, // plain HTTP, loopback only
		HTTPClient:          &http.Client{Transport: s.up},
		FetchTimeout:        o.FetchTimeout,
		KeyRefreshMin:       o.KeyRefresh,
		Introspection:       tokenguard.IntrospectionConfig{ClientID: rsClientID, ClientSecret: rsClientSecret},
		Logger:              s.logs.logger(),
		// TokenCacheSize, UnknownKeyCooldown, MaxKeyStaleness and the
		// introspection cache keep their defaults.
	})
	if err != nil {
		return s, fmt.Errorf("tokenguard.New: %w", err)
	}
	s.api = httptest.NewServer(s.g.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := tokenguard.PrincipalFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, p.Subject) // the client checks it is the token's
	})))
	for _, u := range []string{s.as.URL, s.evil.URL, s.api.URL} {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			return s, fmt.Errorf("%s is not on 127.0.0.1", u)
		}
	}

	for _, kid := range s.as.KeyIDs() {
		s.keys.add(&key{kid: kid, alg: algOf(s.as, kid)})
	}
	s.opaque = make([]issued, o.OpaquePool)
	for i := range s.opaque {
		sub := fmt.Sprintf("o%d", i)
		s.opaque[i] = issued{token: s.as.MintOpaque(oauthtest.Claims{"sub": sub}), sub: sub}
	}
	s.revoked = make([]string, max(o.OpaquePool/10, 1))
	for i := range s.revoked {
		s.revoked[i] = s.as.MintOpaque(oauthtest.Claims{"sub": fmt.Sprintf("x%d", i)})
		s.as.Revoke(s.revoked[i])
	}
	// The initial keys were published before New fetched the set, so the
	// Guard has them; a probe each makes that a fact rather than an
	// assumption.
	for _, k := range s.keys.all() {
		if !s.confirmKnown(nil, k, time.Now().Add(30*time.Second)) {
			return s, fmt.Errorf("the Guard does not accept tokens of initial key %s (%s)", k.kid, k.alg)
		}
	}
	return s, nil
}

// algOf finds a key's algorithm from the token it signs.
func algOf(as *oauthtest.Server, kid string) string {
	tok := as.MintWith(oauthtest.MintOptions{KeyID: kid})
	h, _, _ := strings.Cut(tok, ".")
	for _, alg := range algorithms {
		if strings.Contains(decodeSegment(h), `"alg":"`+alg+`"`) {
			return alg
		}
	}
	panic("soak: unknown algorithm of key " + kid)
}

// traffic runs the clients, the key rotation, the fault phases and the
// memory sampler until the duration is over, the request budget is spent
// or ctx is done; then it waits for every one of them.
func (s *soak) traffic(ctx context.Context) {
	stop := make(chan struct{})
	s.mem.start = liveHeap()
	s.stats.trafficStart = time.Now()
	trafficEnd := s.stats.trafficStart.Add(s.o.Duration)

	var clients, others sync.WaitGroup
	clientsDone := make(chan struct{})
	for i := range s.o.Clients {
		clients.Add(1)
		go func() {
			defer clients.Done()
			s.clientLoop(stop, uint64(i))
		}()
	}
	go func() {
		clients.Wait()
		close(clientsDone)
	}()
	others.Add(3)
	go func() { defer others.Done(); s.rotate(stop) }()
	go func() { defer others.Done(); s.flap(stop, trafficEnd) }()
	go func() { defer others.Done(); s.mem.sample(stop, s.o.Duration/2) }()

	t := time.NewTimer(s.o.Duration)
	select {
	case <-t.C:
	case <-clientsDone:
	case <-ctx.Done():
		s.stats.interrupted.Store(true)
	}
	t.Stop()
	close(stop)
	<-clientsDone
	s.stats.trafficStop = time.Now()
	s.stats.elapsed = s.stats.trafficStop.Sub(s.stats.trafficStart)
	others.Wait() // the phase loop may still wait for a recovery, bounded
	s.mem.end = liveHeap()
}

// shutDown closes everything that was started, in order: the API (which
// waits for its requests), the clients' idle connections, the Guard, the
// Guard's idle connections, then the authorization servers.
func (s *soak) shutDown() {
	if s.api != nil {
		s.api.Close()
	}
	if s.clientTr != nil {
		s.clientTr.CloseIdleConnections()
	}
	if s.g != nil {
		s.g.Close()
	}
	if s.upTr != nil {
		s.upTr.CloseIdleConnections()
	}
	if s.as != nil {
		s.as.Close()
	}
	if s.evil != nil {
		s.evil.Close()
	}
}

// settleGoroutines waits up to limit for the number of goroutines to come
// back to baseline and returns the last count and how long it took.
func settleGoroutines(baseline int, limit time.Duration) (int, time.Duration) {
	start := time.Now()
	for {
		n := runtime.NumGoroutine()
		if n <= baseline || time.Since(start) > limit {
			return n, time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// loopbackOnly refuses every connection that is not to 127.0.0.1: the
// soak must never reach anything else, whatever a document says.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		return errors.New("soak: refusing to connect to " + address + ": 127.0.0.1 only")
	}
	return nil
}

// outcome is what one request got.
type outcome struct {
	status     int // 0 when there was no response
	body       string
	err        error
	sent, recv time.Time
}

// send makes one request to the API with token. It is not cancelled when
// the traffic stops: it runs to its answer, bounded by the client timeout.
func (s *soak) send(token string) outcome {
	req, err := http.NewRequest(http.MethodGet, s.api.URL+path, nil)
	if err != nil {
		return outcome{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	out := outcome{sent: time.Now()}
	resp, err := s.client.Do(req)
	if err != nil {
		out.err, out.recv = err, time.Now()
		return out
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	out.recv = time.Now()
	out.status, out.body, out.err = resp.StatusCode, string(b), err
	if err != nil {
		out.status = 0
	}
	return out
}
