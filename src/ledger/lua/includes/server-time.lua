--[[
  The server's clock, in milliseconds. Every host judges time (leases, liveness, reservation ages) by
  this one clock, never by its own.
]]
local function serverMillis()
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
