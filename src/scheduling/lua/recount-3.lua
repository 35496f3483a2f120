--[[
  Rebuilds the per-worker counters from the reservations themselves. The scripts keep both in step,
  so this changes nothing in normal operation; it exists so that state written by an older version,
  or edited by hand, cannot leave phantom load behind. O(reservations): run at start-up, not on a
  timer.

  Input:
    KEYS[1] jobs key         (hash: token -> "worker|state|reservedAtMs")
    KEYS[2] queued key       (hash: worker id -> count)
    KEYS[3] active key       (hash: worker id -> count)

  Output:
    the number of reservations counted
]]
local entries = redis.call("HGETALL", KEYS[1])
local queued, active = {}, {}
local total = 0
for i = 1, #entries, 2 do
  local worker, state = string.match(entries[i + 1], "^(.*)|([qa])|%d+$")
  if worker then
    local into = queued
    if state == "a" then into = active end
    into[worker] = (into[worker] or 0) + 1
    total = total + 1
  else
    redis.call("HDEL", KEYS[1], entries[i])
  end
end
redis.call("DEL", KEYS[2], KEYS[3])
for worker, count in pairs(queued) do redis.call("HSET", KEYS[2], worker, count) end
for worker, count in pairs(active) do redis.call("HSET", KEYS[3], worker, count) end
return total
