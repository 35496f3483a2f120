--[[
  Deletes a schedule: its definition, its state, and its place among the due. A claim under way
  then records nothing (schedule-advance finds it gone); the job it may have made stays.

  Input:
    KEYS[1] due (zset)
    KEYS[2] states (hash: "<name>|<field>" -> value)
    KEYS[3] definitions (hash)

    ARGV[1] name

  Output: 1 when it existed, else 0
]]
local name = ARGV[1]
redis.call("ZREM", KEYS[1], name)
for _, suffix in ipairs({ "next", "version", "done", "runs", "skipped", "missed", "lastTick", "lastJob" }) do
  redis.call("HDEL", KEYS[2], name .. "|" .. suffix)
end
return redis.call("HDEL", KEYS[3], name)
