--[[
  Lets a live process take over a move whose executor is gone: its executor's lease is no longer
  held by the same owner, or has expired. The new executor drives the move on from where the intent
  says it stopped; every step can be repeated, so a slow old executor that wakes up does no harm.

  Input:
    KEYS[1] moves key   (hash: token -> intent JSON)
    KEYS[2] leases key  (hash: worker id -> "holder|expiresAtMs")

    ARGV[1] token
    ARGV[2] intent id
    ARGV[3] new executor worker id
    ARGV[4] new executor owner
    ARGV[5] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    the intent JSON when adopted, nil otherwise
]]
--- @include "includes/server-time"
--- @include "includes/lease"
--- @include "includes/move-intent"
local intent = intentWithId(redis.call("HGET", KEYS[1], ARGV[1]), ARGV[2])
if not intent then return nil end
local lease = redis.call("HGET", KEYS[2], intent.w)
if lease then
  local holder, expires = parseLease(lease)
  local now = serverMillis(ARGV[5])
  if holder == intent.o and expires > now then return nil end
end
intent.w = ARGV[3]
intent.o = ARGV[4]
local raw = cjson.encode(intent)
redis.call("HSET", KEYS[1], ARGV[1], raw)
return raw
