--[[
  Changes a group's settings and applies them at once: the group joins or leaves the ready set as
  its new limits say (includes/groups.lua). The change is a JSON object: each field given replaces
  the stored one, a null removes it, a field not given is kept; in one step, so that two changes of
  one group at the same moment both apply. A group left without any setting has none stored.

  Input:
    KEYS[1..12] the group keys, in groupKeyList's order (src/contracts/keys.ts)

    ARGV[1] group
    ARGV[2] "merge": apply the change to the stored settings; "replace": store the change alone
    ARGV[3] the change, a JSON object ("{}" with "replace" drops the group's settings)
    ARGV[4] the concurrency of a group without its own (0: no limit)
    ARGV[5] clock: "" to read the server's (production), or the time in ms (tests)

  Output:
    the settings stored now, as JSON ("{}" for none)
]]
--- @include "includes/server-time"
--- @include "includes/groups"
local G = groupKeysFrom(1)
local group = ARGV[1]
local settings = {}
if ARGV[2] == "merge" then
  local stored = redis.call("HGET", G.settings, group)
  if stored then
    local ok, decoded = pcall(cjson.decode, stored)
    if ok and type(decoded) == "table" then settings = decoded end
  end
end
local any = false
for field, value in pairs(cjson.decode(ARGV[3])) do
  if value == cjson.null then settings[field] = nil else settings[field] = value end
end
for _ in pairs(settings) do any = true end
local stored = "{}"
if any then
  stored = cjson.encode(settings)
  redis.call("HSET", G.settings, group, stored)
else
  redis.call("HDEL", G.settings, group)
end
refreshGroup(G, group, ARGV[4], serverMillis(ARGV[5]))
return stored
