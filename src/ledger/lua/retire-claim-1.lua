--[[
  Claims a dead worker id for retirement, or extends this process's claim. The claim is a lease held
  as "retire:<owner>": while it lives, nobody else retires the id and no process can take the id to
  consume it, so the retirer alone moves its jobs. An id is claimable once its lease has been expired
  for the retirement delay, or once an earlier retirer's claim expired.

  Input:
    KEYS[1] leases key   (hash: worker id -> "holder|expiresAtMs")

    ARGV[1] worker id
    ARGV[2] claimer      ("retire:<owner>")
    ARGV[3] retirement delay, ms
    ARGV[4] claim ttl, ms
    ARGV[5] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    1 when this process holds the claim, 0 otherwise
]]
--- @include "includes/server-time"
--- @include "includes/lease"
local current = redis.call("HGET", KEYS[1], ARGV[1])
if not current then return 0 end
local now = serverMillis(ARGV[5])
local holder, expires = parseLease(current)
if holder ~= ARGV[2] then
  if isRetirementClaim(holder) then
    if expires > now then return 0 end
  elseif expires + tonumber(ARGV[3]) > now then
    return 0
  end
end
redis.call("HSET", KEYS[1], ARGV[1], leaseValue(ARGV[2], now + tonumber(ARGV[4])))
return 1
