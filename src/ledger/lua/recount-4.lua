--[[
  Rebuilds one worker's counters, and its list of running tokens, from its reservations. The scripts
  keep them in step, so this changes nothing in normal operation; it exists so that state written by
  an older version, or edited by hand, cannot leave phantom load behind. O(reservations of the
  worker): run at start-up, not on a timer.

  Input:
    KEYS[1] the worker's jobs key    (hash: token -> "state|reservedAtMs")
    KEYS[2] queued key               (hash: worker id -> count)
    KEYS[3] active key               (hash: worker id -> count)
    KEYS[4] the worker's running key (set: tokens of its entries marked a)

    ARGV[1] worker id

  Output:
    the number of reservations counted
]]
--- @include "includes/reservation"
local entries = redis.call("HGETALL", KEYS[1])
local queued, active = 0, 0
redis.call("DEL", KEYS[4])
for i = 1, #entries, 2 do
  local state = reservationFields(entries[i + 1])
  if state == "q" then
    queued = queued + 1
  elseif state == "a" then
    active = active + 1
    redis.call("SADD", KEYS[4], entries[i])
  else
    redis.call("HDEL", KEYS[1], entries[i])
  end
end
redis.call("HSET", KEYS[2], ARGV[1], queued)
redis.call("HSET", KEYS[3], ARGV[1], active)
return queued + active
