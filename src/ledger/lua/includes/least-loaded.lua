--[[
  The least-loaded choice, for a new job (reserve) and for a job leaving a retired id (move-begin):
  among candidates sorted by id, the one with the least load / capacity, looked at from `start` on
  and wrapping round, the first of equals winning, so that a cursor that advances on every choice
  spreads ties over every candidate. Ratios are compared by cross-multiplication, so equal ones are
  equal. Its TypeScript specification is pickLeastLoaded in src/ledger/least-loaded.ts;
  test/integration/ledger-rules.test.ts checks both scripts against it.
]]
-- The (1-based) index of the chosen candidate among `count`; `start` is a 0-based position
-- (a cursor modulo count). `load[i]` is queued + active, `capacity[i]` the concurrency.
local function leastLoaded(load, capacity, count, start)
  local best
  for step = 0, count - 1 do
    local i = (start + step) % count + 1
    if best == nil or load[i] * capacity[best] < load[best] * capacity[i] then
      best = i
    end
  end
  return best
end
