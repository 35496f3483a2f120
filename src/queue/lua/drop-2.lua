--[[
  Deletes the source copy of a moved job once the job is in its target queue. Only the copy marked
  with this move's intent is deleted, so a late repeat cannot touch a job that came back later.

  Input:
    KEYS[1] job key
    KEYS[2] job logs key

    ARGV[1] intent id

  Output:
    1 deleted, 0 nothing to delete
]]
if redis.call("HGET", KEYS[1], "bpMove") ~= ARGV[1] then return 0 end
redis.call("DEL", KEYS[1], KEYS[2])
return 1
