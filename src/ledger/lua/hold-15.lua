--[[
  Holds a job until its group's turn (includes/groups.lua): sent in the transaction that adds the job
  to the held queue, whose keys share the ledger's slot, so that a held job and its place in line
  exist together or not at all. The member is also written on the job, for a cancel to find it.
  What the job's add to a worker's queue needs (name, data, options, enqueue time) is copied to the
  payloads hash, so that the release that hands it out answers it and its move reads nothing; a job
  whose data and options are larger than PAYLOAD_COPY_MAX is not copied (its move reads it), so a
  large job is not kept twice.

  Input:
    KEYS[1]     arrival counter key (string)
    KEYS[2]     the job's key in the held queue (hash)
    KEYS[3]     payloads key       (hash: held job id -> JSON {name, data, opts, timestamp}, as stored)
    KEYS[4..15] the group keys, in groupKeyList's order (src/contracts/keys.ts)

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
local PAYLOAD_COPY_MAX = 2048
local G = groupKeysFrom(4)
local group = ARGV[2]
local stored = redis.call("HMGET", KEYS[2], "name", "data", "opts", "timestamp")
if not stored[1] then return nil end
local member = heldMember(group, tonumber(ARGV[3]), redis.call("INCR", KEYS[1]), ARGV[1])
redis.call("ZADD", G.held, 0, member)
addToGroup(G, "waiting", group, 1)
redis.call("HSET", KEYS[2], "bpHeld", member)
if stored[2] and stored[3] and stored[4] and #stored[2] + #stored[3] <= PAYLOAD_COPY_MAX then
  redis.call("HSET", KEYS[3], ARGV[1],
    cjson.encode({ name = stored[1], data = stored[2], opts = stored[3], timestamp = stored[4] }))
end
refreshGroup(G, group, ARGV[4], serverMillis(ARGV[5]))
return member
