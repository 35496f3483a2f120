--[[
  Claims the expiries that are due, for one process to settle: up to ARGV[1] entries whose expiry is
  at or before now (the server's clock), each scored again to now + the lease, so that no other
  process takes them meanwhile, and one that dies part-way leaves them for another once the lease is
  over. The caller removes each entry it settles, or scores it again to look later.

  Input:
    KEYS[1] expiries key (zset: job id -> when it expires, ms)

    ARGV[1] most entries to claim
    ARGV[2] lease, ms
    ARGV[3] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    { now, jobId1, dueAt1, jobId2, dueAt2, ... }
]]
--- @include "../../ledger/lua/includes/server-time"
local now = serverMillis(ARGV[3])
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "WITHSCORES", "LIMIT", 0, tonumber(ARGV[1]))
local leased = now + tonumber(ARGV[2])
local reply = { now }
for i = 1, #due, 2 do
  redis.call("ZADD", KEYS[1], leased, due[i])
  reply[#reply + 1] = due[i]
  reply[#reply + 1] = due[i + 1]
end
return reply
