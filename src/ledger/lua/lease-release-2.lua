--[[
  Gives a lease up at a clean shutdown: the id leaves selection at once and its lease expires now,
  so that another process may take it at once, and the id is retired after the retirement delay if
  none does. Only the holder can release it.

  Input:
    KEYS[1] leases key     (hash: worker id -> "holder|expiresAtMs")
    KEYS[2] heartbeats key (zset: worker id -> last heartbeat, ms)

    ARGV[1] worker id
    ARGV[2] owner
    ARGV[3] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    1 when released, 0 when this process did not hold it
]]
--- @include "includes/server-time"
--- @include "includes/lease"
local current = redis.call("HGET", KEYS[1], ARGV[1])
if not current then return 0 end
local holder = parseLease(current)
if holder ~= ARGV[2] then return 0 end
local now = serverMillis(ARGV[3])
redis.call("HSET", KEYS[1], ARGV[1], leaseValue(ARGV[2], now))
redis.call("ZREM", KEYS[2], ARGV[1])
return 1
