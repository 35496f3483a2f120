--[[
  The heartbeat of a lease holder. It extends the lease only while this process still holds it; a
  lease that lapsed (the process was paused, or cut off from Redis) but that nobody took meanwhile
  is extended all the same. A routable worker is also marked alive for selection, with its capacity.

  The answer also names the ids that are due for retirement: a lease expired for at least the
  retirement delay, or a retirement claim whose retirer stopped renewing it. The time is the server's,
  so every host judges liveness on one clock.

  Input:
    KEYS[1] leases key     (hash: worker id -> "holder|expiresAtMs")
    KEYS[2] heartbeats key (zset: worker id -> last heartbeat, ms)
    KEYS[3] capacity key   (hash: worker id -> concurrency)

    ARGV[1] worker id
    ARGV[2] owner
    ARGV[3] ttl, ms
    ARGV[4] concurrency
    ARGV[5] 1 when the worker takes new jobs, 0 while it drains
    ARGV[6] retirement delay, ms
    ARGV[7] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    {0}                                    the lease is lost: another holder, or it was retired
    {1, lapsed (1 or 0), due ids...}       renewed
]]
--- @include "includes/server-time"
--- @include "includes/lease"
local now = serverMillis(ARGV[7])
local current = redis.call("HGET", KEYS[1], ARGV[1])
if not current then return {0} end
local holder, expires = parseLease(current)
if holder ~= ARGV[2] then return {0} end
local lapsed = expires <= now and 1 or 0
redis.call("HSET", KEYS[1], ARGV[1], leaseValue(ARGV[2], now + tonumber(ARGV[3])))
if ARGV[5] == "1" then
  redis.call("ZADD", KEYS[2], now, ARGV[1])
  redis.call("HSET", KEYS[3], ARGV[1], ARGV[4])
end

local result = {1, lapsed}
local retireMs = tonumber(ARGV[6])
local all = redis.call("HGETALL", KEYS[1])
for i = 1, #all, 2 do
  local other, expiry = parseLease(all[i + 1])
  if isRetirementClaim(other) then
    if expiry <= now then result[#result + 1] = all[i] end
  elseif expiry + retireMs <= now then
    result[#result + 1] = all[i]
  end
end
return result
