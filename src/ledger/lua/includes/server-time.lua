--[[
  The ledger's clock, in milliseconds: the server's, so that every host judges time (leases, liveness,
  reservation ages) by this one clock, never by its own. A script takes a clock argument that is ""
  in production; a test passes its own milliseconds there, to move time on instead of sleeping.
]]
local function serverMillis(given)
  if given ~= nil and given ~= "" then return tonumber(given) end
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
