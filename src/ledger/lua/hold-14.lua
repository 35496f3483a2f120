--[[
  Holds a job until its group's turn (includes/groups.lua): sent in the transaction that adds the job
  to the held queue, whose keys share the ledger's slot, so that a held job and its place in line
  exist together or not at all. The member is also written on the job, for a cancel to find it.

  Input:
    KEYS[1]     arrival counter key (string)
    KEYS[2]     the job's key in the held queue (hash)
    KEYS[3..14] the group keys, in groupKeyList's order (src/contracts/keys.ts)

    ARGV[1] job id
    ARGV[2] group
    ARGV[3] band: 0 for a job without a priority, its priority otherwise
    ARGV[4] the concurrency of a group without its own (0: no limit)
    ARGV[5] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    the job's member in the held set; nil when the job is not in the held queue (its add failed)
]]
--- @include "includes/server-time"
--- @include "includes/groups"
local G = groupKeysFrom(3)
local group = ARGV[2]
if redis.call("EXISTS", KEYS[2]) == 0 then return nil end
local member = heldMember(group, tonumber(ARGV[3]), redis.call("INCR", KEYS[1]), ARGV[1])
redis.call("ZADD", G.held, 0, member)
addToGroup(G, "waiting", group, 1)
redis.call("HSET", KEYS[2], "bpHeld", member)
refreshGroup(G, group, ARGV[4], serverMillis(ARGV[5]))
return member
