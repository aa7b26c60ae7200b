package tgredis

import "github.com/redis/go-redis/v9"

// Each script names exactly one key, KEYS[1], and touches no other key, so
// it is valid on Redis Cluster without hash tags: a script runs on the node
// that owns the slot of its one key. A pub/sub channel is not a key; the
// shard channel of setSPublish is named like KEYS[1] itself, so it lives in
// the same slot. TestScriptsNameOneKey checks the sources.

// setPublish stores ARGV[1] under KEYS[1] for ARGV[2] milliseconds, then
// publishes the value on the channel ARGV[3]. In one script, so a waiter
// that subscribed before the SET either sees the value with GET or gets
// the message: nothing runs between the two. PUBLISH reaches subscribers
// on every node of a cluster.
var setPublish = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1
`)

// setSPublish is setPublish with sharded pub/sub (Redis 7.0 and later,
// Valkey): the shard channel has the key's own name, so it is in the key's
// slot and the message stays within that shard.
var setSPublish = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SPUBLISH', KEYS[1], ARGV[1])
return 1
`)

// release deletes KEYS[1] only if it still holds ARGV[1]: compare and
// delete in one step, so a lease that expired and was taken by another
// holder is left alone.
var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// take is a token bucket in the hash KEYS[1]: field t holds the units left
// (a float), field ts the server time in microseconds at which t was
// right. ARGV[1] is the capacity (limit), ARGV[2] the interval in
// microseconds over which limit units come back, evenly, and ARGV[3] the
// hash's TTL in milliseconds (twice the interval: a bucket left alone that
// long is full, so forgetting it changes nothing).
//
// The clock is the server's TIME, never the caller's, so replicas whose
// clocks disagree share one bucket correctly. If the server's clock goes
// back (a fail-over to a replica that is behind), nothing is refilled until
// it has caught up with ts: the bucket never gives more than it should.
//
// It returns {1, 0} when a unit was taken, or {0, µs until one will be}.
// Redis turns Lua numbers into integers, so both are integers.
var take = redis.NewScript(`
if redis.replicate_commands ~= nil then
	redis.replicate_commands()
end
local limit = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
	tokens = limit
	ts = now
elseif now > ts then
	tokens = tokens + (now - ts) * limit / interval
	ts = now
end
if tokens > limit then
	tokens = limit
end
local taken = 0
local wait = 0
if tokens >= 1 then
	tokens = tokens - 1
	taken = 1
else
	wait = math.ceil((1 - tokens) * interval / limit) + (ts - now)
	if wait < 1 then
		wait = 1
	end
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], ttl)
return {taken, wait}
`)
