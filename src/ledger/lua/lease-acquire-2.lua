--[[
  Takes the lease on a worker id: from then on this process alone consumes the id's queue and may
  recover the jobs its predecessors left running. The lease is free when nobody ever held it, when
  its holder let it expire, or when its holder belongs to the same instance (the same primary saw
  that process exit before it forked this one). A live holder from elsewhere keeps it, and so does a
  live retirement claim ("retire:<owner>").

  Taking the id also ends its retirement: a retired id that starts again starts empty.

  Input:
    KEYS[1] leases key   (hash: worker id -> "holder|expiresAtMs")
    KEYS[2] retired key  (hash: worker id -> retiredAtMs)

    ARGV[1] worker id
    ARGV[2] owner        ("<instance>/<pid>")
    ARGV[3] instance     (the owner's "<instance>/" prefix)
    ARGV[4] ttl, ms
    ARGV[5] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    {1, previous holder or ""}         taken
    {0, holder, ms until it expires}   refused
]]
--- @include "includes/server-time"
--- @include "includes/lease"
local now = serverMillis(ARGV[5])
local current = redis.call("HGET", KEYS[1], ARGV[1])
local previous = ""
if current then
  local holder, expires = parseLease(current)
  local sameInstance = holder ~= nil and string.sub(holder, 1, #ARGV[3]) == ARGV[3]
  if holder ~= ARGV[2] and expires > now and not sameInstance then
    return {0, holder or "", expires - now}
  end
  previous = holder or ""
end
redis.call("HSET", KEYS[1], ARGV[1], leaseValue(ARGV[2], now + tonumber(ARGV[4])))
redis.call("HDEL", KEYS[2], ARGV[1])
return {1, previous}
