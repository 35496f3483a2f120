--[[
  Claims an idempotency key for one request, or answers what the key already holds. A record is
  either a claim ({s = "c", t = claim token, h = body hash, at = ms}) or, once the job exists, the
  answer given ({s = "d", h = body hash, a = answer JSON}); the answer is written in the same
  transaction as the job, so a claim that is still a claim means no job was created for it.

  On a Redis Cluster the jobs and the record live in different slots. There the claim becomes a plan
  ({s = "p", t, h, at, a = the answer to give}) before any job is added, and the answer after the
  last add; each add leaves a marker in its queue's slot (see queue/add-jobs.ts).

  A claim older than the stale time belonged to a request that died before creating its job: the
  same body may take it over. A plan older than that belonged to one that died while adding its
  jobs: the same body resumes it, adding the jobs whose marker is missing. Any other record is
  returned for the caller to judge.

  Input:
    KEYS[1] the key's record (string)

    ARGV[1] claim token of this request
    ARGV[2] body hash
    ARGV[3] time to live of a new record, seconds
    ARGV[4] age after which a claim is stale, ms

  Output:
    {"claimed", now} when this request holds the key now (now: the claim's time, server ms),
    {"resume", record} for a stale plan, {"exists", record} otherwise
]]
-- The server's clock, as every host judges time by it (see the ledger's includes/server-time).
local time = redis.call("TIME")
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local claim = cjson.encode({ s = "c", t = ARGV[1], h = ARGV[2], at = now })
local raw = redis.call("GET", KEYS[1])
if raw then
  local record = cjson.decode(raw)
  local stale = record.h == ARGV[2] and record.at ~= nil and now - tonumber(record.at) > tonumber(ARGV[4])
  if stale and record.s == "c" then
    redis.call("SET", KEYS[1], claim, "KEEPTTL")
    return { "claimed", now }
  end
  if stale and record.s == "p" then
    return { "resume", raw }
  end
  return { "exists", raw }
end
redis.call("SET", KEYS[1], claim, "EX", ARGV[3])
return { "claimed", now }
