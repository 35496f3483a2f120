--[[
  Takes a cancelled held job out of its group's line (includes/groups.lua). The job itself is filed
  as cancelled in the held queue first; a job whose member is gone already (it was handed to a
  worker) is left alone.

  Input:
    KEYS[1]     the job's key in the held queue (hash; its field bpHeld is its member)
    KEYS[2..13] the group keys, in groupKeyList's order (src/contracts/keys.ts)

    ARGV[1] the concurrency of a group without its own (0: no limit)
    ARGV[2] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    1 when the job left the line, 0 otherwise
]]
--- @include "includes/server-time"
--- @include "includes/groups"
local G = groupKeysFrom(2)
local member = redis.call("HGET", KEYS[1], "bpHeld")
if not member or redis.call("ZREM", G.held, member) == 0 then return 0 end
local group = string.match(member, "^([^|]+)|")
addToGroup(G, "waiting", group, -1)
refreshGroup(G, group, ARGV[1], serverMillis(ARGV[2]))
return 1
