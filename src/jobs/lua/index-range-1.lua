--[[
  Reads the job index (a sorted set: job id -> enqueue time in ms) from a position on, newest first
  or oldest first, for GET /jobs and for the sweep that trims the index. The position is a score and
  a member and need not be in the set any more (its job may have been dropped since): the range
  starts right after the place where that entry is, or would be. Entries of equal score are ordered
  by member, byte by byte (Redis's own order), so ties are paged exactly. The position is found by
  counting and a binary search over the ties, so the cost is O(log n) whatever the number of ties,
  and all of it happens in one atomic step: entries added meanwhile cannot shift the range.

  Input:
    KEYS[1] index key

    ARGV[1] "newest" (descending) or "oldest" (ascending)
    ARGV[2] most entries to return
    ARGV[3] position score, or "" to start at the first entry
    ARGV[4] position member (ignored without a score)

  Output:
    a flat list: member, score, member, score, ...
]]
local index = KEYS[1]
local newest = ARGV[1] == "newest"
local count = tonumber(ARGV[2])

-- Lua's own string comparison follows the server's locale; the set's order is bytewise.
local function bytesBefore(a, b)
  local length = math.min(#a, #b)
  for i = 1, length do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function entryAt(rank)
  if newest then return redis.call("ZREVRANGE", index, rank, rank)[1] end
  return redis.call("ZRANGE", index, rank, rank)[1]
end

local start = 0
if ARGV[3] ~= "" then
  local score, member = ARGV[3], ARGV[4]
  local ahead
  if newest then
    ahead = redis.call("ZCOUNT", index, "(" .. score, "+inf")
  else
    ahead = redis.call("ZCOUNT", index, "-inf", "(" .. score)
  end
  local ties = redis.call("ZCOUNT", index, score, score)
  -- The first tie that comes after the position: below it newest first, above it oldest first.
  local low, high = ahead, ahead + ties
  while low < high do
    local middle = math.floor((low + high) / 2)
    local tie = entryAt(middle)
    local after
    if newest then after = bytesBefore(tie, member) else after = bytesBefore(member, tie) end
    if after then high = middle else low = middle + 1 end
  end
  start = low
end

if count <= 0 then return {} end
if newest then return redis.call("ZREVRANGE", index, start, start + count - 1, "WITHSCORES") end
return redis.call("ZRANGE", index, start, start + count - 1, "WITHSCORES")
