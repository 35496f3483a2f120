--[[
  Deletes what is left of a worker id's queue once no job is in it: its own keys (metadata, event
  stream, counters, markers). In one step, so that a job that reaches the queue just before (a late
  add, or an id started again) keeps the queue, and is never deleted with it, as BullMQ's obliterate
  would (it pauses the queue first, then deletes whatever the queue holds, over several calls).
  Job hashes in no list (a move's source copy) are not this script's to find: its caller waits for
  the moves to end.

  Input:
    KEYS[1..m]    the queue's job lists and sets (wait, paused, active, prioritized, delayed,
                  completed, failed, waiting-children, repeat): an empty one does not exist
    KEYS[m+1..]   the queue's other keys, deleted

    ARGV[1] m, how many of KEYS are job lists and sets

  Output:
    1 deleted, 0 a job is in the queue (nothing deleted)
]]
local lists = tonumber(ARGV[1])
for i = 1, lists do
  if redis.call("EXISTS", KEYS[i]) == 1 then return 0 end
end
for i = lists + 1, #KEYS do
  redis.call("DEL", KEYS[i])
end
return 1
