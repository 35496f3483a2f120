--[[
  Gives a lease up at a clean shutdown: the id leaves selection at once and its lease expires now,
  so that another process may take it at once, and the id is retired after the retirement delay if
  none does. Only the holder can release it.

  Input:
    KEYS[1] leases key     (hash: worker id -> "holder|expiresAtMs")
    KEYS[2] heartbeats key (zset: worker id -> last heartbeat, ms)

    ARGV[1] worker id
    ARGV[2] owner

  Output:
    1 when released, 0 when this process did not hold it
]]
local current = redis.call("HGET", KEYS[1], ARGV[1])
if not current then return 0 end
local holder = string.match(current, "^(.*)|%d+$")
if holder ~= ARGV[2] then return 0 end
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2] .. "|" .. now)
redis.call("ZREM", KEYS[2], ARGV[1])
return 1
