--[[
  Gives up a claim whose request failed before creating its job, so that a retry may claim the key
  at once. Only the claim of the given token goes: an answer, or another request's claim, stays.

  Input:
    KEYS[1] the key's record (string)
    ARGV[1] claim token

  Output:
    1 when the claim was removed, 0 otherwise
]]
local raw = redis.call("GET", KEYS[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if record.s == "c" and record.t == ARGV[1] then
  redis.call("DEL", KEYS[1])
  return 1
end
return 0
