--[[
  Moves one job's reservation between states and keeps its worker's counters in step with it. Every
  change to the counters goes through this script or reserve, keyed by the job's token, so a repeated
  or late call (a retry, a command that timed out but still ran) changes nothing twice.

  It also keeps the two short lists the reconcile pass reads instead of every reservation: the
  worker's running tokens (every entry marked a), and its unconfirmed reservations (reserved, their
  job not yet seen). A job that starts is confirmed. A running entry put back to queued becomes
  unconfirmed again, scored by its reservation time, so that the next pass checks its job once: an
  entry requeued because its process is gone may belong to a job that finished meanwhile.

  A job's group (includes/groups.lua) counts it as running from its start, and as neither running
  nor handed out once it finishes; the end of a job may let its group's held jobs start again.

  Input:
    KEYS[1] the worker's jobs key (hash: token -> "state|sinceMs[|first worker]", state q or a; a
            moved job's entry names the worker its id was made for)
    KEYS[2] queued key            (hash: worker id -> jobs assigned, not started)
    KEYS[3] active key            (hash: worker id -> jobs running)
    KEYS[4] the worker's running key     (set: tokens of its entries marked a)
    KEYS[5] the worker's unconfirmed key (zset: token -> reservedAtMs)
    KEYS[6..17] the group keys, in groupKeyList's order (src/contracts/keys.ts)

    ARGV[1] worker id
    ARGV[2] token
    ARGV[3] operation:
              start    q -> a; a missing entry is created as a (the job runs, so it is load)
              requeue  a -> q (the attempt ended and the job will run again, or was interrupted)
              finish   q|a -> gone (includes/finish.lua)
    ARGV[4] clock: "" to read the server's (production), or the time in ms (tests)
    ARGV[5] the concurrency of a group without its own (0: no limit)

  Output:
    1 when something changed, 0 otherwise
]]
--- @include "includes/server-time"
--- @include "includes/reservation"
--- @include "includes/groups"
--- @include "includes/finish"
local function reservationKeys()
  return { jobs = KEYS[1], queued = KEYS[2], active = KEYS[3], running = KEYS[4], unconfirmed = KEYS[5] }
end
local worker, token, op = ARGV[1], ARGV[2], ARGV[3]
local G = groupKeysFrom(6)
local function runningGroup(delta)
  local group = redis.call("HGET", G.groupOf, token)
  if group then addToGroup(G, "running", group, delta) end
end
-- A finish reads the entry itself (includes/finish.lua): it is read here only for the others.
if op == "finish" then
  local R = reservationKeys()
  return finishReservation(R, G, worker, token, ARGV[5], serverMillis(ARGV[4]))
end
local entry = redis.call("HGET", KEYS[1], token)
local state, since, rest
if entry then
  state, since, rest = reservationFields(entry)
end
rest = rest or ""

if op == "start" then
  -- Listed even when the entry already reads a: the list is repaired by the job it lists.
  redis.call("SADD", KEYS[4], token)
  if state == "a" then return 0 end
  if state == "q" then
    redis.call("HINCRBY", KEYS[2], worker, -1)
  else
    since = tostring(serverMillis(ARGV[4]))
  end
  redis.call("ZREM", KEYS[5], token)
  redis.call("HSET", KEYS[1], token, reservationEntry("a", since, rest))
  redis.call("HINCRBY", KEYS[3], worker, 1)
  runningGroup(1)
  return 1
elseif op == "requeue" then
  -- A token listed as running whose entry is not marked a leaves the list all the same.
  redis.call("SREM", KEYS[4], token)
  if state ~= "a" then return 0 end
  redis.call("HSET", KEYS[1], token, reservationEntry("q", since, rest))
  redis.call("ZADD", KEYS[5], since, token)
  redis.call("HINCRBY", KEYS[3], worker, -1)
  redis.call("HINCRBY", KEYS[2], worker, 1)
  runningGroup(-1)
  return 1
end
return redis.error_reply("unknown operation " .. tostring(op))
