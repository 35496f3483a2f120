--[[
  Chooses, for each of a batch of jobs in turn, the live worker with the least load, and reserves one
  slot of it, all in one step, so that concurrent requests from every process see each other's
  reservations. A batch is what one process received in the same event-loop turn; choosing for its
  jobs one after another here gives exactly what separate calls in a row would.

  Load is jobs assigned but not started plus jobs running. Workers are compared by load relative to
  their concurrency (cross-multiplied, so no floats); ties are broken by a rotating cursor so that an
  idle cluster fills its workers evenly. Each reservation is keyed by a token, which the caller makes
  fresh for each job (a reserve whose answer was lost is undone by cancel). Once the jobs assigned but
  not started, over all workers, reach the backlog limit, nothing more is reserved.

  Each worker's reservations live in their own hash, `<jobs key prefix><worker id>`, built here from
  the chosen id; on Redis Cluster the deployment prefix carries a hash tag so they share the slot.
  This runs for every enqueue on the one Redis every host shares, so it keeps to a handful of calls.

  Input:
    KEYS[1] heartbeats key   (zset: worker id -> last heartbeat, ms)
    KEYS[2] capacity key     (hash: worker id -> concurrency)
    KEYS[3] queued key       (hash: worker id -> jobs assigned, not started)
    KEYS[4] active key       (hash: worker id -> jobs running)
    KEYS[5] cursor key       (string: tie-break rotation)

    ARGV[1] liveness ttl, ms
    ARGV[2] backlog limit
    ARGV[3] jobs key prefix  (hash per worker: token -> "state|reservedAtMs", state q or a)
    ARGV[4..] tokens

  Output, one entry per token:
    the chosen worker id
    0   no worker is alive
    -1  the backlog is full
]]
local tokens = {}
for i = 4, #ARGV do
  tokens[#tokens + 1] = ARGV[i]
end
local k = #tokens
local results = {}

local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call("ZRANGEBYSCORE", KEYS[1], now - tonumber(ARGV[1]), "+inf")
local n = #live
if n == 0 then
  for j = 1, k do results[j] = 0 end
  return results
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
local limit = tonumber(ARGV[2])

local capacities = redis.call("HMGET", KEYS[2], unpack(live))
local active = redis.call("HMGET", KEYS[4], unpack(live))
local load, capacity = {}, {}
for i = 1, n do
  load[i] = (queuedBy[live[i]] or 0) + (tonumber(active[i]) or 0)
  capacity[i] = tonumber(capacities[i]) or 1
end

-- The cursor advances once per job, as k separate calls would advance it.
local last = redis.call("INCRBY", KEYS[5], k)
for j = 1, k do
  if backlog >= limit then
    results[j] = -1
  else
    local start = (last - k + j) % n
    local best
    for step = 0, n - 1 do
      local i = (start + step) % n + 1
      if best == nil or load[i] * capacity[best] < load[best] * capacity[i] then
        best = i
      end
    end
    redis.call("HSET", ARGV[3] .. live[best], tokens[j], "q|" .. now)
    redis.call("HINCRBY", KEYS[3], live[best], 1)
    load[best] = load[best] + 1
    backlog = backlog + 1
    results[j] = live[best]
  end
end
return results
