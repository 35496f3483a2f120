--[[
  Step 3 of a move, once the job has left the source queue: the job's reservation moves from the
  source to the target in one step, with both workers' counters, before the job can appear in the
  target queue (so the target's own start and finish find it there). It also records where the job
  now is, for reads of its public id. Repeating it changes nothing.

  Input:
    KEYS[1] moves key        (hash: token -> intent JSON)
    KEYS[2] the source's reservations key
    KEYS[3] the target's reservations key
    KEYS[4] queued key       (hash: worker id -> jobs assigned, not started)
    KEYS[5] active key       (hash: worker id -> jobs running)
    KEYS[6] the job's location key (string: "current|from,from,...")
    KEYS[7] the source's unconfirmed key (zset: token -> reservedAtMs)
    KEYS[8] the target's unconfirmed key

    ARGV[1] token
    ARGV[2] intent id
    ARGV[3] location ttl, ms
    ARGV[4] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    1 shifted (now or before), 0 the intent is gone (another process finished the move)
]]
--- @include "includes/server-time"
--- @include "includes/reservation"
--- @include "includes/move-intent"
--- @include "includes/job-id"
local intent = intentWithId(redis.call("HGET", KEYS[1], ARGV[1]), ARGV[2])
if not intent then return 0 end
if intent.p == "shifted" then return 1 end

local entry = redis.call("HGET", KEYS[2], ARGV[1])
if entry then
  redis.call("HDEL", KEYS[2], ARGV[1])
  redis.call("ZREM", KEYS[7], ARGV[1])
  if isRunning(entry) then
    redis.call("HINCRBY", KEYS[5], intent.s, -1)
  else
    redis.call("HINCRBY", KEYS[4], intent.s, -1)
  end
end
-- Reserved now on the target, and unconfirmed there: the target's reconciler grants a fresh
-- reservation its grace period while the job is still on its way into the queue, then checks its
-- job once. The entry names the worker the job's id was made for, so that the target finds the job
-- under its id.
if redis.call("HEXISTS", KEYS[3], ARGV[1]) == 0 then
  local first = parseJobId(intent.j) or intent.s
  local now = serverMillis(ARGV[4])
  redis.call("HSET", KEYS[3], ARGV[1], reservationEntry("q", now, "|" .. first))
  redis.call("ZADD", KEYS[8], now, ARGV[1])
  redis.call("HINCRBY", KEYS[4], intent.t, 1)
end

local from = intent.s
local location = redis.call("GET", KEYS[6])
if location then
  local earlier = string.match(location, "^[^|]*|(.*)$")
  if earlier and earlier ~= "" then from = earlier .. "," .. intent.s end
end
redis.call("SET", KEYS[6], intent.t .. "|" .. from, "PX", ARGV[3])

intent.p = "shifted"
redis.call("HSET", KEYS[1], ARGV[1], cjson.encode(intent))
return 1
