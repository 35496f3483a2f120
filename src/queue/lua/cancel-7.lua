--[[
  Cancels a job that has not started: takes it out of its queue's waiting lists (wait, paused,
  prioritized or delayed) and files it with the queue's failed jobs, with the reason given ("cancelled",
  or "expired"), so that it is kept, listed and retried like any failed job, and can never start. A
  job that is running (locked), finished, unknown, or between two queues (a move marked it) is left
  alone: the caller then signals the process that runs it (a cancel), or looks again later (an
  expiry). An expiry also leaves alone a job that started before (one waiting for its retry).

  BullMQ's consumer takes jobs from the same lists with one atomic script, so exactly one of the two
  gets the job.

  Input:
    KEYS[1] wait key
    KEYS[2] paused key
    KEYS[3] prioritized key
    KEYS[4] delayed key
    KEYS[5] failed key
    KEYS[6] job key
    KEYS[7] job lock key

    ARGV[1] job id
    ARGV[2] failure reason
    ARGV[3] "1": only a job that never started (BullMQ's attemptsStarted, "ats", is 0); "" otherwise

  Output:
    the list it left ("wait", "prioritized" or "delayed"), or nil when it was not waiting
]]
--- @include "../../ledger/lua/includes/server-time"
local jobId = ARGV[1]
if redis.call("EXISTS", KEYS[6]) == 0 or redis.call("EXISTS", KEYS[7]) == 1 then return nil end
if redis.call("HEXISTS", KEYS[6], "bpMove") == 1 then return nil end
if ARGV[3] == "1" and tonumber(redis.call("HGET", KEYS[6], "ats") or "0") > 0 then return nil end

local from = nil
if redis.call("LREM", KEYS[1], 1, jobId) > 0 or redis.call("LREM", KEYS[2], 1, jobId) > 0 then
  from = "wait"
elseif redis.call("ZREM", KEYS[3], jobId) > 0 then
  from = "prioritized"
elseif redis.call("ZREM", KEYS[4], jobId) > 0 then
  from = "delayed"
end
if not from then return nil end

local now = serverMillis()
redis.call("ZADD", KEYS[5], now, jobId)
redis.call("HSET", KEYS[6], "failedReason", ARGV[2], "finishedOn", now)
return from
