--[[
  Fair scheduling between tenant groups, as every script that changes a group's work applies it.

  A job that cannot start at once waits in the held queue, and its group's member in the held set
  ("<group>|<band>|<seq>|<job id>") orders it: highest priority first (band 0 is "no priority",
  which BullMQ runs before any priority; then 1, 2, ...), then arrival. A group whose next held job
  may start now (it is not paused, under its concurrency, within its rate limit) has one member in
  the ready set, "<band>|<pass>|<group>": the next job handed to a worker is the next one of the
  first member's group. A group's pass grows by PASS_SCALE / weight at each of its turns (stride
  scheduling), so each group gets turns in proportion to its weight; a group that joins takes the
  pass of the last turn in its band, so that time spent idle or blocked earns it no burst.

  The group keys come in KEYS in groupKeyList's order (src/contracts/keys.ts); `groupKeysFrom(i)`
  names them from KEYS[i] on. A group's settings are read once per script call.
]]
-- The least common multiple of 1..16: the stride of every weight up to 16 is a whole number.
local PASS_SCALE = 720720

local function groupKeysFrom(first)
  return {
    held = KEYS[first], waiting = KEYS[first + 1], inflight = KEYS[first + 2], running = KEYS[first + 3],
    groupOf = KEYS[first + 4], settings = KEYS[first + 5], ready = KEYS[first + 6],
    readyAt = KEYS[first + 7], pass = KEYS[first + 8], virtualTime = KEYS[first + 9],
    sleeping = KEYS[first + 10], starts = KEYS[first + 11],
  }
end

local settingsCache = {}

-- A group's settings: concurrency (0: no limit), weight, paused, and its rate limit (max 0: none).
local function groupSettings(G, group, defaultConcurrency)
  local cached = settingsCache[group]
  if cached then return cached end
  local s = { concurrency = tonumber(defaultConcurrency) or 0, weight = 1, paused = false, max = 0, duration = 0 }
  local raw = redis.call("HGET", G.settings, group)
  if raw then
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == "table" then
      if type(decoded.concurrency) == "number" then s.concurrency = decoded.concurrency end
      if type(decoded.weight) == "number" and decoded.weight >= 1 then s.weight = decoded.weight end
      if decoded.paused == true then s.paused = true end
      if type(decoded.rateLimit) == "table" then
        s.max = tonumber(decoded.rateLimit.max) or 0
        s.duration = tonumber(decoded.rateLimit.durationMs) or 0
      end
    end
  end
  settingsCache[group] = s
  return s
end

-- One of the group's counts: `count` names a hash of G (waiting, inflight, running).
local function groupCount(G, count, group)
  return tonumber(redis.call("HGET", G[count], group)) or 0
end

-- Counts stay small: a group's field goes when it reaches 0.
local function addToGroup(G, count, group, delta)
  if redis.call("HINCRBY", G[count], group, delta) <= 0 then redis.call("HDEL", G[count], group) end
end

local function isRateLimited(s)
  return s.max > 0 and s.duration > 0
end

-- The group's starts within its window (times in ms, as strings, oldest first).
local function recentStarts(G, group, s, now)
  local kept = {}
  local raw = redis.call("HGET", G.starts, group)
  if raw then
    for t in string.gmatch(raw, "%d+") do
      if tonumber(t) > now - s.duration then kept[#kept + 1] = t end
    end
  end
  return kept
end

-- When the group's rate limit lets it start a job: 0 for now.
local function rateWakeAt(G, group, s, now)
  if not isRateLimited(s) then return 0 end
  local kept = recentStarts(G, group, s, now)
  if #kept < s.max then return 0 end
  return tonumber(kept[#kept - s.max + 1]) + s.duration
end

local function recordStart(G, group, s, now)
  if not isRateLimited(s) then
    redis.call("HDEL", G.starts, group)
    return
  end
  local kept = recentStarts(G, group, s, now)
  kept[#kept + 1] = tostring(now)
  local from = math.max(1, #kept - s.max + 1)
  redis.call("HSET", G.starts, group, table.concat(kept, " ", from, #kept))
end

-- Whether the group may start one more job now; when only its rate limit stops it, also when it may.
local function mayStart(G, group, s, now)
  if s.paused then return false, 0 end
  if s.concurrency > 0 and groupCount(G, "inflight", group) >= s.concurrency then return false, 0 end
  local wake = rateWakeAt(G, group, s, now)
  if wake > now then return false, wake end
  return true, 0
end

-- The member of the group's next held job, nil when it holds none.
local function heldHead(G, group)
  return redis.call("ZRANGEBYLEX", G.held, "[" .. group .. "|", "(" .. group .. "}", "LIMIT", 0, 1)[1]
end

local function heldMember(group, band, seq, jobId)
  return group .. "|" .. string.format("%07d", band) .. "|" .. string.format("%015d", seq) .. "|" .. jobId
end

local function readyMember(band, pass, group)
  return band .. "|" .. string.format("%017d", pass) .. "|" .. group
end

-- Puts the group in the ready set, or takes it out, as its held jobs and settings say now.
local function refreshGroup(G, group, defaultConcurrency, now)
  local old = redis.call("HGET", G.readyAt, group)
  local head = heldHead(G, group)
  local open, wake = false, 0
  if head then open, wake = mayStart(G, group, groupSettings(G, group, defaultConcurrency), now) end
  if wake > 0 then redis.call("ZADD", G.sleeping, wake, group) else redis.call("ZREM", G.sleeping, group) end
  if not open then
    if old then
      redis.call("ZREM", G.ready, old)
      redis.call("HDEL", G.readyAt, group)
    end
    return
  end
  local band = string.match(head, "^[^|]+|(%d+)|")
  local virtual = tonumber(redis.call("HGET", G.virtualTime, band)) or 0
  local pass
  if old then
    local oldBand, oldPass = string.match(old, "^(%d+)|(%d+)|")
    if oldBand == band then return end
    redis.call("ZREM", G.ready, old)
    pass = math.max(tonumber(oldPass), virtual)
  else
    pass = math.max(tonumber(redis.call("HGET", G.pass, group)) or 0, virtual)
  end
  local member = readyMember(band, pass, group)
  redis.call("ZADD", G.ready, 0, member)
  redis.call("HSET", G.readyAt, group, member)
end

-- Groups whose rate limit let them start again rejoin the ready set.
local function wakeGroups(G, defaultConcurrency, now)
  for _, group in ipairs(redis.call("ZRANGEBYSCORE", G.sleeping, "-inf", now)) do
    refreshGroup(G, group, defaultConcurrency, now)
  end
end

-- A job of the group is handed to a worker: it counts against the group's limits until it ends.
local function handOut(G, group, token, defaultConcurrency, now)
  redis.call("HSET", G.groupOf, token, group)
  addToGroup(G, "inflight", group, 1)
  recordStart(G, group, groupSettings(G, group, defaultConcurrency), now)
end

-- Takes the next held job in fair order out of the held set: its group and member; nil when none may start.
local function takeNext(G, defaultConcurrency)
  local first = redis.call("ZRANGEBYLEX", G.ready, "-", "+", "LIMIT", 0, 1)[1]
  while first do
    local band, pass, group = string.match(first, "^(%d+)|(%d+)|(.+)$")
    redis.call("ZREM", G.ready, first)
    redis.call("HDEL", G.readyAt, group)
    local member = heldHead(G, group)
    if member then
      redis.call("ZREM", G.held, member)
      addToGroup(G, "waiting", group, -1)
      redis.call("HSET", G.virtualTime, band, pass)
      local stride = math.floor(PASS_SCALE / groupSettings(G, group, defaultConcurrency).weight)
      -- Formatted here: a Lua number becomes a string of 14 digits at most on its way to Redis.
      redis.call("HSET", G.pass, group, string.format("%.0f", tonumber(pass) + math.max(1, stride)))
      -- Nothing waits any more: virtual time starts again from 0, and passes stay small.
      if redis.call("ZCARD", G.held) == 0 then redis.call("DEL", G.pass, G.virtualTime) end
      return group, member
    end
    first = redis.call("ZRANGEBYLEX", G.ready, "-", "+", "LIMIT", 0, 1)[1]
  end
  return nil
end

-- A job handed to a worker ended for good (or its reservation went): its group's counts follow.
local function groupJobEnded(G, token, wasRunning, defaultConcurrency, now)
  local group = redis.call("HGET", G.groupOf, token)
  if not group then return end
  redis.call("HDEL", G.groupOf, token)
  addToGroup(G, "inflight", group, -1)
  if wasRunning then addToGroup(G, "running", group, -1) end
  if redis.call("HEXISTS", G.waiting, group) == 1 then refreshGroup(G, group, defaultConcurrency, now) end
end
