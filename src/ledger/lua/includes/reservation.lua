--[[
  A reservation in a worker's reservations hash: token -> "state|sinceMs[|first worker]". The state
  is q (assigned, not started) or a (running); a moved job's entry names the worker its id was made
  for.
]]
-- The state, the time and the rest ("" or "|<first worker>"); nothing when the entry cannot be read.
local function reservationFields(entry)
  return string.match(entry, "^([qa])|(%d+)(.*)$")
end

-- Whether the entry is a running job's, judged by its first letter alone.
local function isRunning(entry)
  return string.sub(entry, 1, 1) == "a"
end

local function reservationEntry(state, since, rest)
  return state .. "|" .. since .. (rest or "")
end
