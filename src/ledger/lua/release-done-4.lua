--[[
  Ends a held job's move once its add to its worker's queue is done, in one step: where it went is
  recorded (its location, which readers follow), its copy leaves the held queue and its token the
  releasing hash. A steal may have moved the job on from that queue since the add, and recorded where
  it went then (move-shift-8.lua): a location that names a worker already is that newer one, and
  stays. The copy sits in the held queue's delayed set (HELD_DELAY_MS) and has nothing else of
  BullMQ's (no logs, no dependencies), so deleting its key and its entry is all BullMQ's removal would
  do, without the event it would write for it.

  Input:
    KEYS[1] releasing key              (hash: token -> "<worker>|<job id>|<ms>")
    KEYS[2] the job's key in the held queue (hash)
    KEYS[3] the held queue's delayed key (zset: job id -> score)
    KEYS[4] the job's location key     (string: "<worker>|<queues it was in, comma separated>")

    ARGV[1] token
    ARGV[2] job id
    ARGV[3] location
    ARGV[4] how long the location is kept, ms
    ARGV[5] the held queue's name as locations give it (HELD_QUEUE)

  Output:
    1
]]
local current = redis.call("GET", KEYS[4])
if not current or string.match(current, "^([^|]*)|") == ARGV[5] then
  redis.call("SET", KEYS[4], ARGV[3], "PX", ARGV[4])
end
redis.call("ZREM", KEYS[3], ARGV[2])
redis.call("DEL", KEYS[2])
redis.call("HDEL", KEYS[1], ARGV[1])
return 1
