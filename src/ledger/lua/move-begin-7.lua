--[[
  Step 1 of moving a waiting job to another worker's queue: writes the intent down before anything
  moves, so that whoever finds it later (this process, or another after a crash) can drive the move
  to its end. The job's reservation stays with its source until the job has left the source queue.

  With no target given, the target is chosen as for a new job: the least-loaded live worker other
  than the source (retirement). A given target must be live (work stealing: the thief itself).

  Input:
    KEYS[1] moves key        (hash: token -> intent JSON)
    KEYS[2] the source's reservations key
    KEYS[3] heartbeats key   (zset: worker id -> last heartbeat, ms)
    KEYS[4] capacity key
    KEYS[5] queued key
    KEYS[6] active key
    KEYS[7] cursor key

    ARGV[1] token
    ARGV[2] intent id (fresh for each move)
    ARGV[3] source worker id
    ARGV[4] target worker id, or "" to choose one
    ARGV[5] reason           (stolen | retired)
    ARGV[6] executor worker id
    ARGV[7] executor owner   (its lease holder string)
    ARGV[8] liveness ttl, ms
    ARGV[9] the job's public id
    ARGV[10] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    {1, target}   the intent is written
    {0, why}      busy (a move of this job is under way), running, no-target
]]
--- @include "includes/server-time"
--- @include "includes/reservation"
--- @include "includes/least-loaded"
local token, source, target = ARGV[1], ARGV[3], ARGV[4]
if redis.call("HEXISTS", KEYS[1], token) == 1 then return {0, "busy"} end
local entry = redis.call("HGET", KEYS[2], token)
if entry and isRunning(entry) then return {0, "running"} end

local now = serverMillis(ARGV[10])
local live = redis.call("ZRANGEBYSCORE", KEYS[3], now - tonumber(ARGV[8]), "+inf")
if target == "" then
  local candidates = {}
  for _, id in ipairs(live) do
    if id ~= source then candidates[#candidates + 1] = id end
  end
  local count = #candidates
  if count == 0 then return {0, "no-target"} end
  table.sort(candidates)
  local queued = redis.call("HMGET", KEYS[5], unpack(candidates))
  local active = redis.call("HMGET", KEYS[6], unpack(candidates))
  local capacities = redis.call("HMGET", KEYS[4], unpack(candidates))
  local load, capacity = {}, {}
  for i = 1, count do
    load[i] = (tonumber(queued[i]) or 0) + (tonumber(active[i]) or 0)
    capacity[i] = tonumber(capacities[i]) or 1
  end
  target = candidates[leastLoaded(load, capacity, count, redis.call("INCR", KEYS[7]) % count)]
else
  local alive = false
  for _, id in ipairs(live) do
    if id == target then alive = true end
  end
  if not alive or target == source then return {0, "no-target"} end
end

redis.call("HSET", KEYS[1], token, cjson.encode({
  id = ARGV[2], j = ARGV[9], s = source, t = target, r = ARGV[5], w = ARGV[6], o = ARGV[7], at = now, p = "begun",
}))
return {1, target}
