--[[
  A lease value in the leases hash: "holder|expiresAtMs". The holder is a process ("<instance>/<pid>")
  or a retirer's claim ("retire:<owner>").
]]
-- The holder (nil when the value cannot be read) and the expiry (0 when it cannot be read).
local function parseLease(value)
  local holder, expires = string.match(value, "^(.*)|(%d+)$")
  return holder, tonumber(expires) or 0
end

local function leaseValue(holder, expiresAt)
  return holder .. "|" .. expiresAt
end

local function isRetirementClaim(holder)
  return string.sub(holder or "", 1, 7) == "retire:"
end
