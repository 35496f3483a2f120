--[[
  Chooses the live worker with the least load and reserves one slot of it for a job, in one step, so
  that concurrent requests from every process see each other's reservations.

  Load is jobs assigned but not started plus jobs running. Workers are compared by load relative to
  their concurrency (cross-multiplied, so no floats); ties are broken by a rotating cursor so that an
  idle cluster fills its workers evenly. The reservation is keyed by a token, which the caller makes
  fresh for each job (a reserve whose answer was lost is undone by cancel). When the jobs assigned but
  not started, over all workers, already reach the backlog limit, nothing is reserved.

  This runs once per enqueue on the one Redis every host shares, so it keeps to a handful of calls.

  Each worker's reservations live in their own hash, `<jobs key prefix><worker id>`, built here from
  the chosen id; on Redis Cluster the deployment prefix carries a hash tag so they share the slot.

  Input:
    KEYS[1] heartbeats key   (zset: worker id -> last heartbeat, ms)
    KEYS[2] capacity key     (hash: worker id -> concurrency)
    KEYS[3] queued key       (hash: worker id -> jobs assigned, not started)
    KEYS[4] active key       (hash: worker id -> jobs running)
    KEYS[5] cursor key       (string: tie-break rotation)

    ARGV[1] token
    ARGV[2] liveness ttl, ms
    ARGV[3] backlog limit
    ARGV[4] jobs key prefix  (hash per worker: token -> "state|reservedAtMs", state q or a)

  Output:
    the chosen worker id
    0   no worker is alive
    -1  the backlog is full
]]
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call("ZRANGEBYSCORE", KEYS[1], now - tonumber(ARGV[2]), "+inf")
local n = #live
if n == 0 then
  return 0
end
table.sort(live)

-- Every worker's queued count: their sum is the backlog, and the live ones' are part of their load.
local queuedBy = {}
local backlog = 0
local flat = redis.call("HGETALL", KEYS[3])
for i = 1, #flat, 2 do
  local count = tonumber(flat[i + 1])
  queuedBy[flat[i]] = count
  backlog = backlog + count
end
if backlog >= tonumber(ARGV[3]) then
  return -1
end

local capacities = redis.call("HMGET", KEYS[2], unpack(live))
local active = redis.call("HMGET", KEYS[4], unpack(live))
local start = redis.call("INCR", KEYS[5]) % n

local best, bestLoad, bestCapacity
for step = 0, n - 1 do
  local i = (start + step) % n + 1
  local load = (queuedBy[live[i]] or 0) + (tonumber(active[i]) or 0)
  local capacity = tonumber(capacities[i]) or 1
  if best == nil or load * bestCapacity < bestLoad * capacity then
    best, bestLoad, bestCapacity = live[i], load, capacity
  end
end

redis.call("HSET", ARGV[4] .. best, ARGV[1], "q|" .. now)
redis.call("HINCRBY", KEYS[3], best, 1)
return best
