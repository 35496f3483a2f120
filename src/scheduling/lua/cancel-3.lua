--[[
  Undoes a reservation whose worker the caller does not know: the reserve call timed out, and may
  still run on a Redis that resumes. Sent behind it on the same connection, this runs after it and
  finds the reservation on whichever registered worker it landed.

  Input:
    KEYS[1] heartbeats key   (zset: worker id -> last heartbeat, ms)
    KEYS[2] queued key       (hash: worker id -> jobs assigned, not started)
    KEYS[3] active key       (hash: worker id -> jobs running)

    ARGV[1] token
    ARGV[2] jobs key prefix  (hash per worker: token -> "state|reservedAtMs")

  Output:
    1 when a reservation was removed, 0 otherwise
]]
for _, worker in ipairs(redis.call("ZRANGE", KEYS[1], 0, -1)) do
  local entry = redis.call("HGET", ARGV[2] .. worker, ARGV[1])
  if entry then
    redis.call("HDEL", ARGV[2] .. worker, ARGV[1])
    if string.sub(entry, 1, 1) == "a" then
      redis.call("HINCRBY", KEYS[3], worker, -1)
    else
      redis.call("HINCRBY", KEYS[2], worker, -1)
    end
    return 1
  end
end
return 0
