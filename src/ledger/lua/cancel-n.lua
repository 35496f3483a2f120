--[[
  Undoes a reservation whose worker the caller does not know: the reserve call timed out, and may
  still run on a Redis that resumes. Sent behind it on the same connection, this runs after it and
  finds the reservation on whichever of the passed workers it landed. The caller passes every worker
  it passed to reserve (or more), so the reservation cannot be elsewhere.

  Input:
    KEYS[1]   queued key       (hash: worker id -> jobs assigned, not started)
    KEYS[2]   active key       (hash: worker id -> jobs running)
    KEYS[3..] reservations key of each worker named in ARGV[2..], in the same order

    ARGV[1]   token
    ARGV[2..] worker ids

  Output:
    1 when a reservation was removed, 0 otherwise
]]
--- @include "includes/reservation"
for i = 2, #ARGV do
  local jobs = KEYS[i + 1]
  local entry = redis.call("HGET", jobs, ARGV[1])
  if entry then
    redis.call("HDEL", jobs, ARGV[1])
    if isRunning(entry) then
      redis.call("HINCRBY", KEYS[2], ARGV[i], -1)
    else
      redis.call("HINCRBY", KEYS[1], ARGV[i], -1)
    end
    return 1
  end
end
return 0
