--[[
  A move's intent in the moves hash: token -> JSON of {id, j, s, t, r, w, o, at, p}. Every step names
  the intent it belongs to, so a late step of an earlier move of the same job does nothing.
]]
-- The decoded intent stored under a token, when it is the one with this id; nil otherwise.
local function intentWithId(raw, intentId)
  if not raw then return nil end
  local intent = cjson.decode(raw)
  if intent.id ~= intentId then return nil end
  return intent
end
