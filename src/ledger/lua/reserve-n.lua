--[[
  Picks the least-loaded live worker for each token and reserves a slot on it, in one atomic step.

  Load is (queued + active) / concurrency; ties rotate through the workers by a shared cursor, so a
  burst spreads evenly. A reservation is a field in the chosen worker's reservations hash, keyed by
  a token the caller makes fresh for each job (a reserve whose answer was lost is undone by cancel).
  Once the jobs assigned but not started, over all workers, reach the backlog limit, nothing more is
  reserved.

  Each reserved job also gets its entry in the job index (the listing's order of jobs by enqueue
  time, job id -> this call's time), unless it has one: a delayed job routed when due keeps the
  entry of its enqueue. The caller stamps the job with the same time. An entry whose job is then
  never added is dropped by the listing, once it is old enough to be sure.

  Each reservation is also recorded as unconfirmed (its worker's zset, scored by this call's time)
  until its job is seen: the job starts, or the worker's reconcile pass finds it in the queue. The
  pass reads only those, so its cost follows the jobs enqueued lately, not the backlog.

  Fair share (includes/groups.lua): a job goes straight to the least-loaded worker only when that
  worker has room (fewer jobs assigned or running than its concurrency plus the prefetch), no held
  job of any group may start now, its own group holds none, and its group may start a job (it is not
  paused, under its concurrency, within its rate limit). With the service's default prefetch, 0, a
  job is placed only on a free slot, and every other one waits its turn in the held queue. Otherwise the job is to be held: the
  answer names the least-loaded worker all the same (the job's id is made for it, and the 202 names
  it), marked with a "+", and the caller adds the job to the held queue, where it waits for its
  group's turn (hold-14.lua).

  Every key the script touches is passed in KEYS: the caller passes the reservations hash and the
  unconfirmed zset of every worker it knows of. A live worker the caller did not pass (it joined
  since the caller last looked) makes the script answer -2 for every token, and the caller refreshes
  its list and calls again.

  Input:
    KEYS[1]   heartbeats key   (zset: worker id -> last heartbeat, ms)
    KEYS[2]   capacity key     (hash: worker id -> concurrency)
    KEYS[3]   queued key       (hash: worker id -> jobs assigned, not started)
    KEYS[4]   active key       (hash: worker id -> jobs running)
    KEYS[5]   cursor key       (string: tie-break rotation)
    KEYS[6]   job index key    (zset: job id -> enqueue time, ms)
    KEYS[7..18]     the group keys, in groupKeyList's order (src/contracts/keys.ts)
    KEYS[19..18+n]  reservations key of each worker named in ARGV[7..6+n], in the same order
                    (hash: token -> "state|sinceMs", state q or a)
    KEYS[19+n..18+2n] unconfirmed key of each of those workers, in the same order
                    (zset: token -> reservedAtMs)

    ARGV[1]   liveness ttl, ms
    ARGV[2]   backlog limit (jobs assigned and not started, and held jobs)
    ARGV[3]   n, the number of workers passed
    ARGV[4]   clock: "" to read the server's (production), or the time in ms (tests)
    ARGV[5]   prefetch: jobs a worker may hold beyond its concurrency
    ARGV[6]   the concurrency of a group without its own (0: no limit)
    ARGV[7..6+n] worker ids
    ARGV[7+n..]  one per job, "<token>|<first worker>|<group>": the first worker is empty but for a
                 job whose id was made for the delayed queue (the delayed jobs, whose ids name the
                 queue they waited in)

  Output, one entry per token, then the time of the call (ms, the server's clock):
    "<worker id>@<load>" the chosen worker, and its load (queued and running) when it was chosen
    "+<worker id>@<load>" the job is to be held; its id is made for this worker
    0   no worker is alive
    -1  the backlog is full
    -2  a live worker was not passed: refresh the worker list and call again
]]
--- @include "includes/server-time"
--- @include "includes/reservation"
--- @include "includes/job-id"
--- @include "includes/least-loaded"
--- @include "includes/groups"
local n = tonumber(ARGV[3])
local G = groupKeysFrom(7)
local prefetch = tonumber(ARGV[5])
local defaultConcurrency = ARGV[6]
local keyOf, unconfirmedOf = {}, {}
for i = 1, n do
  keyOf[ARGV[6 + i]] = KEYS[18 + i]
  unconfirmedOf[ARGV[6 + i]] = KEYS[18 + n + i]
end
local tokens, firsts, groups = {}, {}, {}
for i = 7 + n, #ARGV do
  local token, first, group = string.match(ARGV[i], "^([^|]+)|([^|]*)|(.+)$")
  tokens[#tokens + 1] = token
  firsts[#tokens] = first ~= "" and ("|" .. first) or ""
  groups[#tokens] = group
end
local k = #tokens
local results = {}

local now = serverMillis(ARGV[4])
local live = redis.call("ZRANGEBYSCORE", KEYS[1], now - tonumber(ARGV[1]), "+inf")
local count = #live
if count == 0 then
  for j = 1, k do results[j] = 0 end
  results[k + 1] = now
  return results
end
for i = 1, count do
  if keyOf[live[i]] == nil then
    for j = 1, k do results[j] = -2 end
    results[k + 1] = now
    return results
  end
end
table.sort(live)

-- Every worker's queued count: their sum and the held jobs are the backlog, and the live ones' are
-- part of their load.
local queuedBy = {}
local backlog = redis.call("ZCARD", G.held)
local flat = redis.call("HGETALL", KEYS[3])
for i = 1, #flat, 2 do
  local queued = tonumber(flat[i + 1])
  queuedBy[flat[i]] = queued
  backlog = backlog + queued
end
local limit = tonumber(ARGV[2])

local capacities = redis.call("HMGET", KEYS[2], unpack(live))
local active = redis.call("HMGET", KEYS[4], unpack(live))
-- `named` also counts the held jobs this call names a worker for, so that their ids spread as
-- placed jobs would.
local load, named, capacity = {}, {}, {}
for i = 1, count do
  load[i] = (queuedBy[live[i]] or 0) + (tonumber(active[i]) or 0)
  named[i] = load[i]
  capacity[i] = tonumber(capacities[i]) or 1
end

wakeGroups(G, defaultConcurrency, now)
local heldMayStart = redis.call("ZCARD", G.ready) > 0

-- The cursor advances once per job, as k separate calls would advance it.
local last = redis.call("INCRBY", KEYS[5], k)
for j = 1, k do
  if backlog >= limit then
    results[j] = -1
  else
    local start = (last - k + j) % count
    local best = leastLoaded(load, capacity, count, start)
    local group = groups[j]
    local direct = not heldMayStart
      and load[best] < capacity[best] + prefetch
      and redis.call("HEXISTS", G.waiting, group) == 0
      and mayStart(G, group, groupSettings(G, group, defaultConcurrency), now)
    if direct then
      results[j] = live[best] .. "@" .. load[best]
      redis.call("HSET", keyOf[live[best]], tokens[j], reservationEntry("q", now, firsts[j]))
      redis.call("ZADD", unconfirmedOf[live[best]], now, tokens[j])
      local first = string.sub(firsts[j], 2)
      redis.call("ZADD", KEYS[6], "NX", now, jobIdFor(first ~= "" and first or live[best], tokens[j]))
      redis.call("HINCRBY", KEYS[3], live[best], 1)
      handOut(G, group, tokens[j], defaultConcurrency, now)
      load[best] = load[best] + 1
      named[best] = named[best] + 1
      backlog = backlog + 1
    else
      local name = leastLoaded(named, capacity, count, start)
      results[j] = "+" .. live[name] .. "@" .. named[name]
      named[name] = named[name] + 1
      backlog = backlog + 1
    end
  end
end
results[k + 1] = now
return results
