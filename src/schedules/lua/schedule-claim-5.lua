--[[
  One look for due schedules, by any process: records that the scheduler is alive, notes when it was
  not (no look for longer than the down threshold: no process ran), and claims up to ARGV[1] due
  schedules. A claim moves the schedule's due time to the end of a lease, so that no other process
  takes the same tick meanwhile, and one that dies holding it leaves it to the next look after the
  lease. The tick itself stays in the schedule's state until its outcome is recorded (advance).

  Input:
    KEYS[1] due (zset: name -> when to look at it next)
    KEYS[2] states (hash: "<name>|<field>" -> value)
    KEYS[3] seen (string: ms of the last look)
    KEYS[4] down (hash: from, to)
    KEYS[5] definitions (hash: name -> JSON)

    ARGV[1] most schedules to claim
    ARGV[2] lease, ms
    ARGV[3] down threshold, ms
    ARGV[4] clock: "" for the server's (tests pass ms)

  Output:
    { now, down from or "", down to or "", earliest due time left or "",
      { { name, tick, version, runs, last job id or "", definition }, ... } }
]]
--- @include "../../ledger/lua/includes/server-time"
local now = serverMillis(ARGV[4])
local seen = tonumber(redis.call("GET", KEYS[3]))
redis.call("SET", KEYS[3], now)
if seen ~= nil and now - seen > tonumber(ARGV[3]) then
  redis.call("HSET", KEYS[4], "from", seen, "to", now)
end

local claimed = {}
local due = redis.call("ZRANGE", KEYS[1], "-inf", now, "BYSCORE", "LIMIT", 0, tonumber(ARGV[1]))
for _, name in ipairs(due) do
  local definition = redis.call("HGET", KEYS[5], name)
  local state = redis.call("HMGET", KEYS[2], name .. "|next", name .. "|version", name .. "|runs", name .. "|lastJob")
  if not definition or not state[1] or state[1] == "" then
    -- Deleted, or ended: nothing is due any more.
    redis.call("ZREM", KEYS[1], name)
  else
    redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), name)
    claimed[#claimed + 1] = { name, state[1], state[2] or "", state[3] or "0", state[4] or "", definition }
  end
end

local down = redis.call("HMGET", KEYS[4], "from", "to")
local earliest = redis.call("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")
return { now, down[1] or "", down[2] or "", earliest[2] or "", claimed }
