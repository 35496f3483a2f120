--[[
  The last step of a move: its intent is removed, either because the job is in the target queue and
  the source copy is gone (commit), or because the job could not leave the source queue (abort: it
  started there, or finished). An abort after the reservation shifted is refused: the job did leave,
  so the move must be committed instead.

  Input:
    KEYS[1] moves key   (hash: token -> intent JSON)

    ARGV[1] token
    ARGV[2] intent id
    ARGV[3] commit | abort

  Output:
    1 ended by this call, 0 the intent was already gone, -1 abort refused (the reservation shifted)
]]
--- @include "includes/move-intent"
local intent = intentWithId(redis.call("HGET", KEYS[1], ARGV[1]), ARGV[2])
if not intent then return 0 end
if ARGV[3] == "abort" and intent.p ~= "begun" then return -1 end
redis.call("HDEL", KEYS[1], ARGV[1])
return 1
