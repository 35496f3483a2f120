--[[
  A job's reservation ends for good (it finished, or will not run where it was reserved): its
  worker's counters and short lists follow it, and so do its group's counts, which may let the
  group's held jobs start again. A repeated call changes nothing twice. Used by transition-17.lua
  and by finish-release-n.lua, which hands the freed slot on in the same step.

  R names the worker's keys: jobs (its reservations hash), queued and active (the counters of every
  worker), running (its running tokens) and unconfirmed (its unconfirmed reservations).
]]
--- @include "reservation"
--- @include "groups"
-- Answers 1 when a reservation ended, 0 when there was none.
local function finishReservation(R, G, worker, token, defaultConcurrency, now)
  local entry = redis.call("HGET", R.jobs, token)
  local state
  if entry then state = reservationFields(entry) end
  if state ~= "q" then redis.call("SREM", R.running, token) end
  if state ~= "a" then redis.call("ZREM", R.unconfirmed, token) end
  groupJobEnded(G, token, state == "a", defaultConcurrency, now)
  if not entry then return 0 end
  redis.call("HDEL", R.jobs, token)
  if state == "q" then
    redis.call("HINCRBY", R.queued, worker, -1)
  elseif state == "a" then
    redis.call("HINCRBY", R.active, worker, -1)
  end
  return 1
end
