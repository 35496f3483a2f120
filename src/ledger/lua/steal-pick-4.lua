--[[
  Whom a worker with a free slot may take waiting work from: the live worker with the most jobs
  assigned beyond what it can run at once. Nothing when the thief has no free slot of its own left
  (counting the jobs already assigned to it), or when no worker has waiting work.

  Input:
    KEYS[1] heartbeats key   (zset: worker id -> last heartbeat, ms)
    KEYS[2] capacity key     (hash: worker id -> concurrency)
    KEYS[3] queued key       (hash: worker id -> jobs assigned, not started)
    KEYS[4] active key       (hash: worker id -> jobs running)

    ARGV[1] thief worker id
    ARGV[2] liveness ttl, ms
    ARGV[3] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    the victim's id, or false
]]
--- @include "includes/server-time"
local now = serverMillis(ARGV[3])
local live = redis.call("ZRANGEBYSCORE", KEYS[1], now - tonumber(ARGV[2]), "+inf")
if #live < 2 then return false end
table.sort(live)
local capacities = redis.call("HMGET", KEYS[2], unpack(live))
local queued = redis.call("HMGET", KEYS[3], unpack(live))
local active = redis.call("HMGET", KEYS[4], unpack(live))
local victim, most = false, 0
local thiefFree = false
for i = 1, #live do
  local excess = (tonumber(queued[i]) or 0) + (tonumber(active[i]) or 0) - (tonumber(capacities[i]) or 1)
  if live[i] == ARGV[1] then
    thiefFree = excess < 0
  elseif (tonumber(queued[i]) or 0) > 0 and excess > most then
    victim, most = live[i], excess
  end
end
if not thiefFree then return false end
return victim
