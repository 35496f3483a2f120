--[[
  Stores a group's settings, or drops them, and applies them at once: the group joins or leaves the
  ready set as its new limits say (includes/groups.lua).

  Input:
    KEYS[1..12] the group keys, in groupKeyList's order (src/contracts/keys.ts)

    ARGV[1] group
    ARGV[2] settings JSON; "" drops the group's settings
    ARGV[3] the concurrency of a group without its own (0: no limit)
    ARGV[4] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    1
]]
--- @include "includes/server-time"
--- @include "includes/groups"
local G = groupKeysFrom(1)
local group = ARGV[1]
if ARGV[2] == "" then
  redis.call("HDEL", G.settings, group)
else
  redis.call("HSET", G.settings, group, ARGV[2])
end
refreshGroup(G, group, ARGV[3], serverMillis(ARGV[4]))
return 1
