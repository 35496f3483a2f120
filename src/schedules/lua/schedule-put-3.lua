--[[
  Writes a schedule (new, or changed): its definition, a new version, and its first tick, which
  becomes due. Its counts and last job stay; a claim of the old version still under way records its
  job but leaves the new rule's next tick alone (see schedule-advance).

  Input:
    KEYS[1] due (zset)
    KEYS[2] states (hash: "<name>|<field>" -> value)
    KEYS[3] definitions (hash)

    ARGV[1] name
    ARGV[2] definition (JSON)
    ARGV[3] first tick (ms), or "" when it has none

  Output: 1 when the schedule is new, 0 when it was changed
]]
local name = ARGV[1]
local created = redis.call("HSET", KEYS[3], name, ARGV[2])
local t = redis.call("TIME")
local version = t[1] .. string.format("%06d", tonumber(t[2]))
redis.call("HSET", KEYS[2], name .. "|version", version, name .. "|next", ARGV[3], name .. "|done", "")
if ARGV[3] == "" then
  redis.call("ZREM", KEYS[1], name)
else
  redis.call("ZADD", KEYS[1], ARGV[3], name)
end
return created
