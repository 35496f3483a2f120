--[[
  Hands held jobs to workers with room, in fair order (groups.lua): for each, the least-loaded live
  worker with room (fewer than its concurrency plus the prefetch jobs assigned or running) gets a
  reservation, as reserve-n.lua makes one, and the next job in turn leaves the held set. The caller
  then moves each job from the held queue to its worker's queue; until it has, the job's token stays
  in the releasing hash, from which a move cut short by a crash is finished (fairness/releaser.ts,
  `recover`). Used by release-n.lua and finish-release-n.lua.

  L names the ledger's keys: heartbeats (zset: worker id -> last heartbeat, ms), capacity (hash:
  worker id -> concurrency), queued and active (hash: worker id -> jobs assigned, not started /
  running), cursor (string: tie-break rotation), releasing (hash: token -> "<worker>|<job id>|<ms>").
  `reservationsOf` and `unconfirmedOf` map each worker id passed to its keys.
]]
--- @include "reservation"
--- @include "job-id"
--- @include "least-loaded"
--- @include "groups"
-- Answers job id, worker, job id, worker, ... for each job handed out (empty when none could be), or
-- -2 when a live worker was not passed (the caller reads the worker list again and calls again).
-- `preferred` (a worker id, or nil) wins ties of least load: the worker whose slot just freed, so
-- that its next job is in its own queue when its completion fetches one.
local function releaseHeld(L, G, reservationsOf, unconfirmedOf, ttl, prefetch, defaultConcurrency, most, now, preferred)
  wakeGroups(G, defaultConcurrency, now)
  if redis.call("ZCARD", G.ready) == 0 then return {} end
  local live = redis.call("ZRANGEBYSCORE", L.heartbeats, now - ttl, "+inf")
  local count = #live
  if count == 0 then return {} end
  for i = 1, count do
    if reservationsOf[live[i]] == nil then return -2 end
  end
  table.sort(live)

  local queued = redis.call("HMGET", L.queued, unpack(live))
  local active = redis.call("HMGET", L.active, unpack(live))
  local capacities = redis.call("HMGET", L.capacity, unpack(live))
  local load, capacity = {}, {}
  for i = 1, count do
    load[i] = (tonumber(queued[i]) or 0) + (tonumber(active[i]) or 0)
    capacity[i] = tonumber(capacities[i]) or 1
  end

  local preferredAt = nil
  for i = 1, count do
    if live[i] == preferred then preferredAt = i - 1 end
  end
  local results = {}
  local last = tonumber(redis.call("GET", L.cursor)) or 0
  for handed = 1, most do
    local best = leastLoaded(load, capacity, count, preferredAt or ((last + handed) % count))
    if load[best] >= capacity[best] + prefetch then break end
    local group, member = takeNext(G, defaultConcurrency)
    if not group then break end
    local jobId = string.match(member, "^[^|]+|%d+|%d+|(.+)$")
    local madeFor, token = parseJobId(jobId)
    local worker = live[best]
    local madeElsewhere = (madeFor ~= nil and madeFor ~= worker) and ("|" .. madeFor) or ""
    redis.call("HSET", reservationsOf[worker], token, reservationEntry("q", now, madeElsewhere))
    redis.call("ZADD", unconfirmedOf[worker], now, token)
    redis.call("HINCRBY", L.queued, worker, 1)
    handOut(G, group, token, defaultConcurrency, now)
    redis.call("HSET", L.releasing, token, worker .. "|" .. jobId .. "|" .. now)
    refreshGroup(G, group, defaultConcurrency, now)
    load[best] = load[best] + 1
    results[#results + 1] = jobId
    results[#results + 1] = worker
  end
  if #results > 0 then redis.call("INCRBY", L.cursor, #results / 2) end
  return results
end

-- The ledger's keys of a release script, from KEYS[first] on: see the header above for their order.
local function releaseKeysFrom(first)
  return {
    heartbeats = KEYS[first], capacity = KEYS[first + 1], queued = KEYS[first + 2], active = KEYS[first + 3],
    cursor = KEYS[first + 4], releasing = KEYS[first + 5],
  }
end
