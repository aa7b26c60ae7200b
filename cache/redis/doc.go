// Package tgredis is the fleet store of tokenguard on Redis: a
// tokenguard.SharedStore through which the replicas of a resource server
// share introspection answers, elect the one replica that asks the
// authorization server about a token while the others wait, and share one
// budget of introspection calls (the seed API allows 5 a minute per
// client, for the whole fleet). It also offers SeenOnce, a replay check for
// the jti of DPoP proofs.
//
// It works through go-redis's redis.UniversalClient, so a single node,
// Sentinel (redis.NewFailoverClient), Redis Cluster and Valkey all work:
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
//		Addrs:                 []string{"redis:6379"},
//		ContextTimeoutEnabled: true,                  // the Guard's deadline bounds each call
//		DialTimeout:           100 * time.Millisecond,
//		ReadTimeout:           50 * time.Millisecond,
//		WriteTimeout:          50 * time.Millisecond,
//		PoolTimeout:           100 * time.Millisecond,
//		MaxRetries:            -1, // none: -1, since 0 means go-redis's default of 3
//		DialerRetries:         1,  // one dial: 0 means 5, 100ms apart
//	})
//	store := tgredis.New(rdb, tgredis.Options{})
//
// # What is stored
//
// Each key is Options.Prefix ("tokenguard:" by default) followed by the
// key the Guard gives, which is derived from a token's hash, never a
// token. The Guard seals what it stores and re-validates what it reads, so
// the store is not trusted; still, give the fleet a Redis of its own, or a
// user limited by ACL to the prefix (~tokenguard:* and, for Wait, the
// channels &tokenguard:*).
//
//   - Get, Set, Delete: GET; SET PX and PUBLISH in one script (SET PX
//     alone with NotifyPoll); DEL.
//   - Lease: SET NX PX. Release: a script that deletes the key only if it
//     still holds the holder.
//   - Wait: GET, then SUBSCRIBE to Prefix+"done:"+key, GET again, and wait
//     for the message that Set publishes in the same script as its SET;
//     or reads the key every Options.PollInterval where there is no
//     pub/sub. See Store.Wait and Notify.
//   - Take: a token bucket in a hash, in one script on the server's clock.
//   - SeenOnce: SET NX PX.
//
// # Redis Cluster
//
// Every call touches exactly one key, and each script names exactly that
// key in KEYS, so no hash tags are needed: a call goes to the node of its
// key. The keys of one token (its answer, its lease) are in one slot only
// if they share a hash tag, which nothing here relies on; a Prefix with a
// hash tag ("{tokenguard}:") would put all keys in one slot, on one node.
// Set publishes with PUBLISH from the key's node, which a cluster forwards
// to every node, so a Wait subscribed on any node hears it. With
// NotifySharded, SPUBLISH and SSUBSCRIBE (Redis 7.0, Valkey 7.2) on a
// shard channel named like the key keep the message within the key's
// shard. The message carries the value, so a woken Wait reads nothing
// more. On a redis.Ring, which shards by key in the client, a PUBLISH is
// heard only on the key's shard: use NotifySharded there (the shard
// channel goes where the key goes), or a Wait learns of a Set only by its
// re-read every 100ms.
//
// # Bounded calls
//
// Every call uses the context it is given, and the Guard bounds that
// context. The Store adds no retries of its own. go-redis, though, ignores
// a context's deadline on the socket unless ContextTimeoutEnabled is set:
// without it, a server that hangs holds a call for ReadTimeout (5s by
// default). Its defaults also retry a failed command 3 times and a failed
// dial 5 times 100ms apart, so a Redis that is down costs a call its whole
// deadline instead of failing at once. Hence the options above: a store
// that fails fast lets the Guard carry on with its own cache and calls.
// A Wait cancelled without a deadline notices within 100ms.
//
// An error on a Lease or Take whose command reached the server may leave
// the lease taken or the unit spent; both are the safe side (the lease
// expires with its TTL, the budget refills). Retries would make it worse:
// a Take retried after a lost reply spends two units, and a Lease retried
// finds its own lease and reports that another replica holds it.
//
// # Versions
//
// The module requires go-redis v9.22.0, the last release whose go.mod asks
// for no more than Go 1.25 (v9.23.0 requires Go 1.26). A program built with
// Go 1.26 may require a later v9; nothing here depends on the difference
// (the tests pass on v9.23.0 as well).
package tgredis
