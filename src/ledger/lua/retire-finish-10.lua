--[[
  Ends a retirement once the id holds no reservation: its lease, liveness, capacity, counters and
  registration go, so it counts toward neither capacity nor backlog and leaves /workers and /metrics.
  The id is remembered as retired (so that its finished jobs stay readable) until it starts again.

  Input:
    KEYS[1] leases key       (hash: worker id -> "holder|expiresAtMs")
    KEYS[2] heartbeats key   (zset: worker id -> last heartbeat, ms)
    KEYS[3] capacity key     (hash: worker id -> concurrency)
    KEYS[4] queued key       (hash: worker id -> jobs assigned, not started)
    KEYS[5] active key       (hash: worker id -> jobs running)
    KEYS[6] workers key      (hash: worker id -> registration JSON)
    KEYS[7] retired key      (hash: worker id -> retiredAtMs)
    KEYS[8] the id's reservations key
    KEYS[9] the id's running key     (set: tokens of its entries marked a)
    KEYS[10] the id's unconfirmed key (zset: token -> reservedAtMs)

    ARGV[1] worker id
    ARGV[2] claimer
    ARGV[3] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    1 retired, 0 reservations are left, -1 the claim is not this process's
]]
--- @include "includes/server-time"
--- @include "includes/lease"
local current = redis.call("HGET", KEYS[1], ARGV[1])
if not current or parseLease(current) ~= ARGV[2] then return -1 end
if redis.call("HLEN", KEYS[8]) > 0 then return 0 end
local now = serverMillis(ARGV[3])
redis.call("HDEL", KEYS[1], ARGV[1])
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("HDEL", KEYS[3], ARGV[1])
redis.call("HDEL", KEYS[4], ARGV[1])
redis.call("HDEL", KEYS[5], ARGV[1])
redis.call("HDEL", KEYS[6], ARGV[1])
redis.call("HSET", KEYS[7], ARGV[1], now)
-- Its lists of running and unconfirmed tokens can only name entries that are gone by now.
redis.call("DEL", KEYS[9], KEYS[10])
return 1
