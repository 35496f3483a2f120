--[[
  Hands held jobs to workers with room, in fair order, in one atomic step (includes/release.lua). It
  runs when a task was held, when a group's settings change, and on the releaser's tick; a slot that
  frees hands itself on with the end of its job (finish-release-n.lua).

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
--- @include "includes/release"
local n = tonumber(ARGV[2])
local reservationsOf, unconfirmedOf = {}, {}
for i = 1, n do
  reservationsOf[ARGV[6 + i]] = KEYS[18 + i]
  unconfirmedOf[ARGV[6 + i]] = KEYS[18 + n + i]
end
local L = releaseKeysFrom(1)
local G = groupKeysFrom(7)
return releaseHeld(L, G, reservationsOf, unconfirmedOf, tonumber(ARGV[1]), tonumber(ARGV[4]), ARGV[5],
  tonumber(ARGV[6]), serverMillis(ARGV[3]))
