--[[
  Moves one job's reservation between states and keeps the per-worker counters in step with it.
  Every change to the counters goes through this script or reserve, keyed by the job's token, so a
  repeated or late call (a retry, a command that timed out but still ran) changes nothing twice.

  Input:
    KEYS[1] jobs key         (hash: token -> "worker|state|reservedAtMs", state q or a)
    KEYS[2] queued key       (hash: worker id -> jobs assigned, not started)
    KEYS[3] active key       (hash: worker id -> jobs running)

    ARGV[1] token
    ARGV[2] operation:
              start    q -> a; a missing entry is created as a (the job runs, so it is load)
              requeue  a -> q (the attempt ended and the job will run again, or was interrupted)
              finish   q|a -> gone
    ARGV[3] worker id, used only when start creates the entry

  Output:
    1 when something changed, 0 otherwise
]]
local entry = redis.call("HGET", KEYS[1], ARGV[1])
local op = ARGV[2]
local worker, state, since
if entry then
  worker, state, since = string.match(entry, "^(.*)|([qa])|(%d+)$")
end

local function counter(s)
  if s == "q" then return KEYS[2] end
  return KEYS[3]
end

if op == "start" then
  if state == "a" then return 0 end
  if not entry then
    local t = redis.call("TIME")
    worker, since = ARGV[3], tostring(tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  else
    redis.call("HINCRBY", KEYS[2], worker, -1)
  end
  redis.call("HSET", KEYS[1], ARGV[1], worker .. "|a|" .. since)
  redis.call("HINCRBY", KEYS[3], worker, 1)
  return 1
elseif op == "requeue" then
  if state ~= "a" then return 0 end
  redis.call("HSET", KEYS[1], ARGV[1], worker .. "|q|" .. since)
  redis.call("HINCRBY", KEYS[3], worker, -1)
  redis.call("HINCRBY", KEYS[2], worker, 1)
  return 1
elseif op == "finish" then
  if not entry then return 0 end
  redis.call("HDEL", KEYS[1], ARGV[1])
  redis.call("HINCRBY", counter(state), worker, -1)
  return 1
end
return redis.error_reply("unknown operation " .. tostring(op))
