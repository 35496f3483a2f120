--[[
  A job's reservation ends for good (includes/finish.lua) and, in the same step, held jobs go to
  workers with room in fair order (includes/release.lua): the slot the job frees is handed on at
  once, without a release call of its own, and without waiting for one under way in its process.
  The finishing worker wins ties of least load, so that its freed slot usually takes the job.
  The consumer sends it as its job ends, on the connection that sent the job's start.

  Input:
    KEYS[1..18]     as release-n.lua: heartbeats, capacity, queued, active, cursor, releasing, then
                    the group keys in groupKeyList's order (src/contracts/keys.ts)
    KEYS[19]        the finishing worker's reservations key (hash: token -> "state|sinceMs[|first]")
    KEYS[20]        the finishing worker's running key       (set: tokens of its entries marked a)
    KEYS[21]        the finishing worker's unconfirmed key   (zset: token -> reservedAtMs)
    KEYS[22..21+n]  reservations key of each worker named in ARGV[9..8+n], in the same order
    KEYS[22+n..21+2n] unconfirmed key of each of those workers, in the same order

    ARGV[1]      liveness ttl, ms
    ARGV[2]      n, the number of workers passed
    ARGV[3]      clock: "" to read the server's (production), or the time in ms (tests)
    ARGV[4]      prefetch: jobs a worker may hold beyond its concurrency
    ARGV[5]      the concurrency of a group without its own (0: no limit)
    ARGV[6]      the most jobs to hand out in this call
    ARGV[7]      the finishing worker's id
    ARGV[8]      the finishing job's token
    ARGV[9..8+n] worker ids

  Output:
    job id, worker, job id, worker, ... for each job handed out (empty when none could be)
    -2  a live worker was not passed: refresh the worker list and call again (the end is done, and
        is not done twice)
]]
--- @include "includes/server-time"
--- @include "includes/finish"
--- @include "includes/release"
local function finishingKeys()
  return { jobs = KEYS[19], queued = KEYS[3], active = KEYS[4], running = KEYS[20], unconfirmed = KEYS[21] }
end
local n = tonumber(ARGV[2])
local L = releaseKeysFrom(1)
local G = groupKeysFrom(7)
local R = finishingKeys()
local now = serverMillis(ARGV[3])
local defaultConcurrency = ARGV[5]
finishReservation(R, G, ARGV[7], ARGV[8], defaultConcurrency, now)
local reservationsOf, unconfirmedOf = {}, {}
for i = 1, n do
  reservationsOf[ARGV[8 + i]] = KEYS[21 + i]
  unconfirmedOf[ARGV[8 + i]] = KEYS[21 + n + i]
end
return releaseHeld(L, G, reservationsOf, unconfirmedOf, tonumber(ARGV[1]), tonumber(ARGV[4]), defaultConcurrency,
  tonumber(ARGV[6]), now, ARGV[7])
