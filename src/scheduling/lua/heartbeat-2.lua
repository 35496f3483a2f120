--[[
  Marks a worker alive and records its capacity. The time is the server's, so liveness is judged on
  one clock even when the workers run on several hosts.

  Input:
    KEYS[1] heartbeats key   (zset: worker id -> last heartbeat, ms)
    KEYS[2] capacity key     (hash: worker id -> concurrency)

    ARGV[1] worker id
    ARGV[2] concurrency

  Output:
    the server time in ms
]]
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZADD", KEYS[1], now, ARGV[1])
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
return now
