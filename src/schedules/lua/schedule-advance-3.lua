--[[
  Records the outcome of a claimed tick: the job it made (or that it was skipped), the ticks missed
  before it, and the next tick, which becomes due. A tick is recorded once: a second claimer of the
  same tick (the first outlived its lease) finds it done. When the schedule was written again since
  the claim (another version), its new rule has set its next tick already: only the counts and the
  last job are recorded. A deleted schedule records nothing.

  Input:
    KEYS[1] due (zset)
    KEYS[2] states (hash: "<name>|<field>" -> value)
    KEYS[3] definitions (hash)

    ARGV[1] name
    ARGV[2] the claimed tick (ms)
    ARGV[3] the version the claim read
    ARGV[4] outcome: "made", "skipped" or "none" (every tick missed, or nothing to do)
    ARGV[5] the job's tick, or ""
    ARGV[6] the job's id, or ""
    ARGV[7] ticks missed
    ARGV[8] the next tick, or "" when the schedule ends

  Output: "recorded", "stale" (recorded already) or "gone"
]]
local name = ARGV[1]
local function field(suffix) return name .. "|" .. suffix end
if redis.call("HEXISTS", KEYS[3], name) == 0 then return "gone" end

if redis.call("HGET", KEYS[2], field("version")) == ARGV[3] then
  local done = tonumber(redis.call("HGET", KEYS[2], field("done")))
  if done ~= nil and done >= tonumber(ARGV[2]) then return "stale" end
  redis.call("HSET", KEYS[2], field("done"), ARGV[2], field("next"), ARGV[8])
  if ARGV[8] == "" then
    redis.call("ZREM", KEYS[1], name)
  else
    redis.call("ZADD", KEYS[1], ARGV[8], name)
  end
end

if ARGV[4] == "made" then
  redis.call("HINCRBY", KEYS[2], field("runs"), 1)
  redis.call("HSET", KEYS[2], field("lastTick"), ARGV[5], field("lastJob"), ARGV[6])
elseif ARGV[4] == "skipped" then
  redis.call("HINCRBY", KEYS[2], field("skipped"), 1)
end
if tonumber(ARGV[7]) > 0 then redis.call("HINCRBY", KEYS[2], field("missed"), ARGV[7]) end
return "recorded"
