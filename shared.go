package tokenguard

import (
	"context"
	"time"
)

// SharedStore is what the replicas of a fleet share through, so that they
// behave like one resource server towards the authorization server:
// introspection answers, who among them is asking it about a token right
// now, and the fleet's budget of introspection calls. The module
// github.com/tokenguard/tokenguard/cache/redis implements it on Redis (a
// single node, Sentinel or Cluster, and Valkey).
//
// A store is not trusted: the Guard encrypts and authenticates what it
// stores with a key of its configuration (FleetConfig.Key), so the store
// can read nothing of it, and what it reads back counts only if it opens
// under that key at the key it was read from, is within its deadline, and
// the answer inside passes every check a fresh answer would. Keys are
// MACs of token hashes under a prefix, never a token. Values are at most
// a little over 128 KiB: a larger one read back is ignored unread, so an
// implementation may refuse to return one. Every call gets a context
// bounded by the Guard; a store that fails or is slow makes the Guard
// carry on with its own cache and calls for the rest of the request, never
// fail open. What the store can still do is deny: say that the fleet's
// budget is spent, or delete what it holds. Implementations must be safe
// for concurrent use.
type SharedStore interface {
	// Get returns the value stored under key; nil and no error when there
	// is none.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key for ttl (> 0), replacing any value.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes key; removing a key that does not exist is no error.
	Delete(ctx context.Context, key string) error

	// Lease sets key to holder for ttl unless key exists (Redis SET NX
	// PX), and reports whether it did: the holder is the one replica that
	// calls the authorization server about a token while the others wait.
	Lease(ctx context.Context, key, holder string, ttl time.Duration) (bool, error)
	// Release removes key if it still holds holder (a lease that timed out
	// and was taken by another replica is left alone).
	Release(ctx context.Context, key, holder string) error
	// Wait returns the value stored under key as soon as there is one
	// (set by a lease holder, with Set), or nil and no error when ctx ends
	// first or when the store cannot tell (the caller then looks once more
	// with Get, or calls itself). It may wake on a notification or poll,
	// at most every few milliseconds.
	Wait(ctx context.Context, key string) ([]byte, error)

	// Take takes one unit from the token bucket named key, which holds
	// limit units and refills limit units per interval, evenly, for the
	// whole fleet (atomically in the store). It reports whether a unit was
	// taken and, if not, how long until one will be.
	Take(ctx context.Context, key string, limit int, interval time.Duration) (bool, time.Duration, error)
}
