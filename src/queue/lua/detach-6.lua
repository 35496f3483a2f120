--[[
  Takes a job that is waiting (or prioritized, or delayed) out of its queue's lists, so that this
  queue's consumer can no longer start it, and marks its hash with the move under way. The hash stays
  until the job is in the target queue: it is the copy a crashed move is finished from. A job that
  is running (locked), finished or unknown is left alone: its own consumer won the race.

  BullMQ's consumer takes jobs from the same lists with one atomic script, so exactly one of the two
  gets the job.

  Input:
    KEYS[1] wait key
    KEYS[2] paused key
    KEYS[3] prioritized key
    KEYS[4] delayed key
    KEYS[5] job key
    KEYS[6] job lock key

    ARGV[1] job id
    ARGV[2] intent id

  Output:
    {state it left, due time ms for a delayed job or 0} when detached (now or by an earlier call with
    the same intent), nil when the job cannot move
]]
local jobId = ARGV[1]
local mark = redis.call("HMGET", KEYS[5], "bpMove", "bpFrom", "bpDue")
if mark[1] then
  if mark[1] == ARGV[2] then return {mark[2], tonumber(mark[3]) or 0} end
  return nil
end
if redis.call("EXISTS", KEYS[5]) == 0 or redis.call("EXISTS", KEYS[6]) == 1 then return nil end

local from, due = nil, 0
if redis.call("LREM", KEYS[1], 1, jobId) > 0 or redis.call("LREM", KEYS[2], 1, jobId) > 0 then
  from = "wait"
elseif redis.call("ZREM", KEYS[3], jobId) > 0 then
  from = "prioritized"
else
  local score = redis.call("ZSCORE", KEYS[4], jobId)
  if score then
    redis.call("ZREM", KEYS[4], jobId)
    from = "delayed"
    -- BullMQ keeps the due time in the upper bits of the score (12 bits of ordering below).
    due = math.floor(tonumber(score) / 4096)
  end
end
if not from then return nil end
redis.call("HSET", KEYS[5], "bpMove", ARGV[2], "bpFrom", from, "bpDue", due)
return {from, due}
