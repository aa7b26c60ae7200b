package tgredis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tokenguard/tokenguard"
)

// DefaultPrefix is the prefix of every key and channel when Options.Prefix
// is empty.
const DefaultPrefix = "tokenguard:"

// DefaultPollInterval is how often Wait looks for the value when it cannot
// be notified, when Options.PollInterval is zero.
const DefaultPollInterval = 20 * time.Millisecond

// recheckEvery is how often Wait, while subscribed, also reads the key: a
// notification can be lost (the subscription's connection broke and was
// made again, a fail-over, a replica that notifies otherwise), and then
// Wait is only later, never stuck. It is also the longest a Wait whose
// context is cancelled without a deadline takes to notice.
var recheckEvery = 100 * time.Millisecond // a variable for the tests only

// Notify says how Set tells a Wait that a value is there.
type Notify int

const (
	// NotifyPublish (the default): Set publishes the value with PUBLISH on
	// the channel Prefix+"done:"+key, and Wait subscribes to it. Works on
	// every Redis and Valkey version, and cluster-wide on Redis Cluster
	// (a PUBLISH is forwarded to every node).
	NotifyPublish Notify = iota
	// NotifySharded uses sharded pub/sub (SPUBLISH / SSUBSCRIBE, Redis 7.0
	// and later, Valkey 7.2 and later) on a shard channel named like the
	// key itself, so on a cluster a message goes only to the shard that
	// holds the key instead of to every node. On a redis.Ring (sharding by
	// the client) it is the mode that works: the shard channel is on the
	// key's shard, where the PUBLISH of NotifyPublish is not heard. Every
	// replica of a fleet must use the same Notify, or a Wait learns of a
	// Set only by its re-read every 100ms. On a server without sharded
	// pub/sub, Wait falls back to polling and Set fails.
	NotifySharded
	// NotifyPoll: Set publishes nothing and Wait reads the key every
	// PollInterval, for servers or users with no pub/sub.
	NotifyPoll
)

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Prefix goes in front of every key and channel (DefaultPrefix when
	// empty). It may hold a hash tag, such as "{tokenguard}:", to put all
	// of the store's keys in one Redis Cluster slot; none is needed, since
	// every call touches one key.
	Prefix string
	// Notify says how Wait learns of a Set (NotifyPublish by default).
	Notify Notify
	// PollInterval is how often Wait reads the key when it cannot
	// subscribe (DefaultPollInterval when zero; at least 1ms).
	PollInterval time.Duration
}

// Store is a tokenguard.SharedStore on Redis, through a
// redis.UniversalClient: a single node (redis.NewClient), Sentinel
// (redis.NewFailoverClient), Redis Cluster (redis.NewClusterClient) or any
// of them from redis.NewUniversalClient, and Valkey likewise. It is safe
// for concurrent use. It does not own the client: close the client
// yourself, after the Guard.
type Store struct {
	c      redis.UniversalClient
	prefix string
	notify Notify
	poll   time.Duration
}

var _ tokenguard.SharedStore = (*Store)(nil)

// New returns a Store on client. See the package documentation for the
// client options that keep every call within its context's deadline.
func New(client redis.UniversalClient, opts Options) *Store {
	s := &Store{c: client, prefix: opts.Prefix, notify: opts.Notify, poll: opts.PollInterval}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.poll == 0 {
		s.poll = DefaultPollInterval
	}
	if s.poll < time.Millisecond {
		s.poll = time.Millisecond
	}
	if s.notify < NotifyPublish || s.notify > NotifyPoll {
		s.notify = NotifyPublish
	}
	return s
}

// Key returns the Redis key under which the store keeps key: Prefix+key.
func (s *Store) Key(key string) string { return s.prefix + key }

// channel is the channel a Set of key publishes on: Prefix+"done:"+key,
// or with NotifySharded the shard channel Prefix+key (the key's own name,
// so the same cluster slot).
func (s *Store) channel(key string) string {
	if s.notify == NotifySharded {
		return s.prefix + key
	}
	return s.prefix + "done:" + key
}

// Get returns the value stored under key (GET Prefix+key), or nil and no
// error when there is none.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrap("get", err)
	}
	v, err := s.get(ctx, s.Key(key))
	return v, wrap("get", err)
}

func (s *Store) get(ctx context.Context, k string) ([]byte, error) {
	v, err := s.c.Get(ctx, k).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Set stores value under key for ttl (SET Prefix+key value PX ttl) and,
// unless Options.Notify is NotifyPoll, publishes it to the Waits of key in
// the same script. ttl must be positive; it is rounded up to a whole
// millisecond.
func (s *Store) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ms, err := millis(ttl)
	if err != nil {
		return wrap("set", err)
	}
	if err := ctx.Err(); err != nil {
		return wrap("set", err)
	}
	k := s.Key(key)
	switch s.notify {
	case NotifyPoll:
		err = s.c.Do(ctx, "set", k, value, "px", ms).Err()
	case NotifySharded:
		err = setSPublish.Run(ctx, s.c, []string{k}, value, ms).Err()
	default:
		err = setPublish.Run(ctx, s.c, []string{k}, value, ms, s.channel(key)).Err()
	}
	return wrap("set", err)
}

// Delete removes key (DEL Prefix+key); a key that does not exist is no
// error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return wrap("delete", err)
	}
	return wrap("delete", s.c.Del(ctx, s.Key(key)).Err())
}

// Lease sets key to holder for ttl unless key exists (SET Prefix+key
// holder NX PX ttl) and reports whether it did. ttl must be positive.
func (s *Store) Lease(ctx context.Context, key, holder string, ttl time.Duration) (bool, error) {
	ok, err := s.setNX(ctx, key, holder, ttl)
	return ok, wrap("lease", err)
}

// SeenOnce records key for ttl unless it is already recorded (SET
// Prefix+key 1 NX PX ttl), and reports whether this was the first time:
// the replay check of a fleet, such as for the jti of DPoP proofs (RFC
// 9449 §11.1), where a proof whose jti was seen before by any replica is
// refused. Use a key that names what is checked and where it came from,
// such as "dpop:" + a hash of the issuer or key thumbprint and the jti, and
// a ttl no shorter than the time a proof is accepted for (its iat window
// and leeway), so a replay cannot outlive the record of it. On an error
// the caller cannot know whether the key was seen, and must refuse the
// proof (fail closed).
func (s *Store) SeenOnce(ctx context.Context, key string, ttl time.Duration) (first bool, err error) {
	ok, err := s.setNX(ctx, key, "1", ttl)
	return ok, wrap("seen-once", err)
}

func (s *Store) setNX(ctx context.Context, key, value string, ttl time.Duration) (bool, error) {
	ms, err := millis(ttl)
	if err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	err = s.c.Do(ctx, "set", s.Key(key), value, "nx", "px", ms).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

// Release removes key if it still holds holder, in one script (compare
// and delete), so a lease that timed out and was taken by another holder is
// left alone. Releasing a key that does not exist is no error.
func (s *Store) Release(ctx context.Context, key, holder string) error {
	if err := ctx.Err(); err != nil {
		return wrap("release", err)
	}
	return wrap("release", release.Run(ctx, s.c, []string{s.Key(key)}, holder).Err())
}

// Wait returns the value stored under key as soon as there is one, or nil
// and no error when ctx ends first.
//
// With NotifyPublish or NotifySharded it reads the key, and if there is
// no value yet, subscribes to the key's channel on a connection of its own,
// waits for the server to confirm the subscription, then reads the key
// again: a Set after that point is published to
// it, one before is seen by the read. While it waits, it also reads the key
// every 100ms, in case a notification is lost. When it cannot subscribe
// (no pub/sub for this user, an old server, the subscription breaks) it
// reads the key every PollInterval instead. It returns an error when the
// key cannot be read, so the caller goes on by itself. It starts no
// goroutine and holds no connection once it returns.
func (s *Store) Wait(ctx context.Context, key string) ([]byte, error) {
	if ended(ctx) {
		return nil, nil
	}
	k := s.Key(key)
	if s.notify != NotifyPoll {
		// A value already there costs one GET, not a subscription.
		v, err := s.get(ctx, k)
		switch {
		case ended(ctx):
			return nil, nil
		case err != nil:
			return nil, wrap("wait", err)
		case v != nil:
			return v, nil
		}
		if v, err, done := s.waitNotified(ctx, k, s.channel(key)); done {
			return v, err
		}
		if ended(ctx) {
			return nil, nil
		}
	}
	return s.waitPolling(ctx, k)
}

// waitNotified waits on a subscription. done is false when it could not
// subscribe, or the subscription broke: the caller polls instead.
func (s *Store) waitNotified(ctx context.Context, k, ch string) (v []byte, err error, done bool) {
	ps := s.subscribe(ctx, ch)
	if ps == nil {
		return nil, nil, false
	}
	defer ps.Close()

	// The reply to SUBSCRIBE: only from then on is a PUBLISH delivered.
	m, err := ps.ReceiveTimeout(ctx, recheckEvery)
	if err != nil {
		if ended(ctx) {
			return nil, nil, true
		}
		return nil, nil, false
	}
	if sub, ok := m.(*redis.Subscription); !ok || sub.Channel != ch {
		return nil, nil, false
	}

	for {
		v, err := s.get(ctx, k)
		switch {
		case ended(ctx):
			return nil, nil, true
		case err != nil:
			return nil, wrap("wait", err), true
		case v != nil:
			return v, nil, true
		}
		// Until the next look at the key.
		next := time.Now().Add(recheckEvery)
		for {
			d := time.Until(next)
			if d <= 0 {
				break
			}
			m, err := ps.ReceiveTimeout(ctx, d) // d > 0: 0 would mean no timeout
			if err != nil {
				if ended(ctx) {
					return nil, nil, true
				}
				if isTimeout(err) {
					break
				}
				return nil, nil, false
			}
			if msg, ok := m.(*redis.Message); ok && msg.Channel == ch {
				return []byte(msg.Payload), nil, true
			}
		}
	}
}

// subscribe starts the subscription to ch, or returns nil when the client
// cannot: a redis.Ring panics in Subscribe when all its shards are down.
func (s *Store) subscribe(ctx context.Context, ch string) (ps *redis.PubSub) {
	defer func() {
		if recover() != nil {
			ps = nil
		}
	}()
	if s.notify == NotifySharded {
		return s.c.SSubscribe(ctx, ch)
	}
	return s.c.Subscribe(ctx, ch)
}

// waitPolling reads the key every PollInterval.
func (s *Store) waitPolling(ctx context.Context, k string) ([]byte, error) {
	t := time.NewTimer(s.poll)
	defer t.Stop()
	for {
		v, err := s.get(ctx, k)
		switch {
		case ended(ctx):
			return nil, nil
		case err != nil:
			return nil, wrap("wait", err)
		case v != nil:
			return v, nil
		}
		t.Reset(s.poll)
		select {
		case <-ctx.Done():
			return nil, nil
		case <-t.C:
		}
	}
}

// Take takes one unit from the token bucket key (a hash at Prefix+key,
// expiring after twice interval), which holds limit units and refills
// limit units per interval, evenly, in one script on the server's clock.
// It reports whether a unit was taken and, if not, how long until one will
// be. limit and interval must be positive.
func (s *Store) Take(ctx context.Context, key string, limit int, interval time.Duration) (bool, time.Duration, error) {
	if limit <= 0 || interval <= 0 {
		return false, 0, wrap("take", fmt.Errorf("limit (%d) and interval (%s) must be positive", limit, interval))
	}
	if err := ctx.Err(); err != nil {
		return false, 0, wrap("take", err)
	}
	us := (interval + time.Microsecond - 1) / time.Microsecond
	ttl := (2*interval + time.Millisecond - 1) / time.Millisecond
	r, err := take.Run(ctx, s.c, []string{s.Key(key)}, limit, int64(us), int64(ttl)).Int64Slice()
	if err != nil {
		return false, 0, wrap("take", err)
	}
	if len(r) != 2 {
		return false, 0, wrap("take", fmt.Errorf("unexpected reply %v", r))
	}
	if r[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(r[1]) * time.Microsecond, nil
}

// millis is ttl in whole milliseconds, rounded up, as SET PX takes it.
func millis(ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("ttl %s must be positive", ttl)
	}
	return strconv.FormatInt(int64((ttl+time.Millisecond-1)/time.Millisecond), 10), nil
}

// ended reports whether ctx is done or its deadline has passed (a socket
// deadline set from it can fire a moment before ctx says so).
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("tgredis: %s: %w", op, err)
}
