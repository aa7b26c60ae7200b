package tgredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	tgredis "github.com/tokenguard/tokenguard/cache/redis"
)

// call is one method of the store, reduced to its error (and, for Wait,
// whether it returned a value).
type call struct {
	name string
	do   func(ctx context.Context, s *tgredis.Store) (bool, error)
}

var calls = []call{
	{"Set", func(ctx context.Context, s *tgredis.Store) (bool, error) {
		return true, s.Set(ctx, "k", []byte("v"), time.Minute)
	}},
	{"Get", func(ctx context.Context, s *tgredis.Store) (bool, error) {
		v, err := s.Get(ctx, "k")
		return v != nil, err
	}},
	{"Delete", func(ctx context.Context, s *tgredis.Store) (bool, error) { return true, s.Delete(ctx, "gone") }},
	{"Lease", func(ctx context.Context, s *tgredis.Store) (bool, error) {
		return s.Lease(ctx, "lease", "h", time.Minute)
	}},
	{"Release", func(ctx context.Context, s *tgredis.Store) (bool, error) { return true, s.Release(ctx, "lease", "h") }},
	{"Take", func(ctx context.Context, s *tgredis.Store) (bool, error) {
		ok, _, err := s.Take(ctx, "bucket", 1000, time.Minute)
		return ok, err
	}},
	{"SeenOnce", func(ctx context.Context, s *tgredis.Store) (bool, error) {
		return s.SeenOnce(ctx, "jti-"+time.Now().String(), time.Minute)
	}},
	{"Wait", func(ctx context.Context, s *tgredis.Store) (bool, error) {
		v, err := s.Wait(ctx, "k")
		return v != nil, err
	}},
}

// allWork runs every call and fails t unless each succeeds (Wait finds
// the value Set stored).
func allWork(t *testing.T, s *tgredis.Store) {
	t.Helper()
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ok, err := c.do(ctx, s)
		cancel()
		if err != nil || !ok {
			t.Fatalf("%s = %v, %v; want it to work", c.name, ok, err)
		}
	}
}

// allFailInTime runs every call with a context of deadline and fails t
// unless each returns within it (and some slack) with an error; Wait may
// instead return nil, nil, as it does when its context ends.
func allFailInTime(t *testing.T, s *tgredis.Store, deadline time.Duration) {
	t.Helper()
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		start := time.Now()
		ok, err := c.do(ctx, s)
		took := time.Since(start)
		cancel()
		if took > deadline+250*time.Millisecond {
			t.Errorf("%s took %s with a deadline of %s", c.name, took, deadline)
		}
		switch {
		case c.name == "Wait" && !ok && err == nil && took >= deadline-5*time.Millisecond:
			t.Logf("%s: nil, nil after %s (its context ended)", c.name, took)
		case err == nil:
			t.Errorf("%s = %v, nil with the server down; want an error", c.name, ok)
		default:
			t.Logf("%s: error after %s: %v", c.name, took, err)
		}
	}
}

// Redis killed mid-test: every method fails within its context's
// deadline, on a client with the recommended options and on one with
// go-redis's defaults; when redis-server is back on the same port, the
// same Stores work again (go-redis dials anew).
func TestServerKilledAndRestarted(t *testing.T) {
	needServer(t)
	srv, err := startServer(0)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	prefix := testPrefix(t)
	tuned := tgredis.New(client(t, srv), tgredis.Options{Prefix: prefix})
	def := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer def.Close()
	defaults := tgredis.New(def, tgredis.Options{Prefix: prefix})

	for _, s := range []*tgredis.Store{tuned, defaults} {
		allWork(t, s)
		_ = s.Delete(context.Background(), "k")
		_ = s.Release(context.Background(), "lease", "h")
	}

	srv.kill()
	t.Run("recommended options", func(t *testing.T) { allFailInTime(t, tuned, 300*time.Millisecond) })
	t.Run("go-redis defaults", func(t *testing.T) { allFailInTime(t, defaults, 300*time.Millisecond) })

	if err := srv.start(); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*tgredis.Store{"recommended options": tuned, "go-redis defaults": defaults} {
		// The first call after the restart may still meet a connection
		// the old server closed; within a second the Store works again.
		deadline := time.Now().Add(5 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			_, err := s.Get(ctx, "k")
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still failing 5s after the restart: %v", name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		allWork(t, s)
		_ = s.Delete(context.Background(), "k")
		_ = s.Release(context.Background(), "lease", "h")
	}
}
