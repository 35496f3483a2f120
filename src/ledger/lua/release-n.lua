--[[
  Hands held jobs to workers with room, in fair order (includes/groups.lua), in one atomic step: for
  each, the least-loaded live worker with room (fewer than its concurrency plus the prefetch jobs
  assigned or running) gets a reservation, as reserve-n.lua makes one, and the next job in turn
  leaves the held set. The caller then moves each job from the held queue to its worker's queue;
  until it has, the job's token stays in the releasing hash, from which a move cut short by a crash
  is finished (fairness/releaser.ts, `recover`).

  Input:
    KEYS[1]   heartbeats key   (zset: worker id -> last heartbeat, ms)
    KEYS[2]   capacity key     (hash: worker id -> concurrency)
    KEYS[3]   queued key       (hash: worker id -> jobs assigned, not started)
    KEYS[4]   active key       (hash: worker id -> jobs running)
    KEYS[5]   cursor key       (string: tie-break rotation)
    KEYS[6]   releasing key    (hash: token -> "<worker>|<job id>|<ms>")
    KEYS[7..18]     the group keys, in groupKeyList's order (src/contracts/keys.ts)
    KEYS[19..18+n]  reservations key of each worker named in ARGV[7..6+n], in the same order
    KEYS[19+n..18+2n] unconfirmed key of each of those workers, in the same order

    ARGV[1]   liveness ttl, ms
    ARGV[2]   n, the number of workers passed
    ARGV[3]   clock: "" to read the server's (production), or the time in ms (tests)
    ARGV[4]   prefetch: jobs a worker may hold beyond its concurrency
    ARGV[5]   the concurrency of a group without its own (0: no limit)
    ARGV[6]   the most jobs to hand out in this call
    ARGV[7..6+n] worker ids

  Output:
    job id, worker, job id, worker, ... for each job handed out (empty when none could be)
    -2  a live worker was not passed: refresh the worker list and call again
]]
--- @include "includes/server-time"
--- @include "includes/reservation"
--- @include "includes/job-id"
--- @include "includes/least-loaded"
--- @include "includes/groups"
local n = tonumber(ARGV[2])
local G = groupKeysFrom(7)
local prefetch = tonumber(ARGV[4])
local defaultConcurrency = ARGV[5]
local most = tonumber(ARGV[6])
local keyOf, unconfirmedOf = {}, {}
for i = 1, n do
  keyOf[ARGV[6 + i]] = KEYS[18 + i]
  unconfirmedOf[ARGV[6 + i]] = KEYS[18 + n + i]
end

local now = serverMillis(ARGV[3])
wakeGroups(G, defaultConcurrency, now)
if redis.call("ZCARD", G.ready) == 0 then return {} end
local live = redis.call("ZRANGEBYSCORE", KEYS[1], now - tonumber(ARGV[1]), "+inf")
local count = #live
if count == 0 then return {} end
for i = 1, count do
  if keyOf[live[i]] == nil then return -2 end
end
table.sort(live)

local queued = redis.call("HMGET", KEYS[3], unpack(live))
local active = redis.call("HMGET", KEYS[4], unpack(live))
local capacities = redis.call("HMGET", KEYS[2], unpack(live))
local load, capacity = {}, {}
for i = 1, count do
  load[i] = (tonumber(queued[i]) or 0) + (tonumber(active[i]) or 0)
  capacity[i] = tonumber(capacities[i]) or 1
end

local results = {}
local last = tonumber(redis.call("GET", KEYS[5])) or 0
for handed = 1, most do
  local best = leastLoaded(load, capacity, count, (last + handed) % count)
  if load[best] >= capacity[best] + prefetch then break end
  local group, member = takeNext(G, defaultConcurrency)
  if not group then break end
  local jobId = string.match(member, "^[^|]+|%d+|%d+|(.+)$")
  local madeFor, token = parseJobId(jobId)
  local worker = live[best]
  local first = (madeFor ~= nil and madeFor ~= worker) and ("|" .. madeFor) or ""
  redis.call("HSET", keyOf[worker], token, reservationEntry("q", now, first))
  redis.call("ZADD", unconfirmedOf[worker], now, token)
  redis.call("HINCRBY", KEYS[3], worker, 1)
  handOut(G, group, token, defaultConcurrency, now)
  redis.call("HSET", KEYS[6], token, worker .. "|" .. jobId .. "|" .. now)
  refreshGroup(G, group, defaultConcurrency, now)
  load[best] = load[best] + 1
  results[#results + 1] = jobId
  results[#results + 1] = worker
end
if #results > 0 then redis.call("INCRBY", KEYS[5], #results / 2) end
return results
