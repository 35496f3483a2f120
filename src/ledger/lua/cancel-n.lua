--[[
  Undoes a reservation whose worker the caller does not know: the reserve call timed out, and may
  still run on a Redis that resumes. Sent behind it on the same connection, this runs after it and
  finds the reservation on whichever of the passed workers it landed. The caller passes every worker
  it passed to reserve (or more), so the reservation cannot be elsewhere.

  Input:
    KEYS[1]   queued key       (hash: worker id -> jobs assigned, not started)
    KEYS[2]   active key       (hash: worker id -> jobs running)
    KEYS[3..14] the group keys, in groupKeyList's order (src/contracts/keys.ts)
    KEYS[15..] reservations key of each worker named in ARGV[4..], in the same order

    ARGV[1]   token
    ARGV[2]   the concurrency of a group without its own (0: no limit)
    ARGV[3]   clock: "" to read the server's (production), or the time in ms (tests)
    ARGV[4..] worker ids

  Output:
    1 when a reservation was removed, 0 otherwise
]]
--- @include "includes/server-time"
--- @include "includes/reservation"
--- @include "includes/groups"
local G = groupKeysFrom(3)
for i = 4, #ARGV do
  local jobs = KEYS[i + 11]
  local entry = redis.call("HGET", jobs, ARGV[1])
  if entry then
    redis.call("HDEL", jobs, ARGV[1])
    groupJobEnded(G, ARGV[1], isRunning(entry), ARGV[2], serverMillis(ARGV[3]))
    if isRunning(entry) then
      redis.call("HINCRBY", KEYS[2], ARGV[i], -1)
    else
      redis.call("HINCRBY", KEYS[1], ARGV[i], -1)
    end
    return 1
  end
end
return 0
