--[[
  A job's public id: "<worker>~<token>", the worker the id was made for (a worker id, or the delayed
  queue's name) and the job's token. The worker part is 1 to 80 of [A-Za-z0-9_.-], the token 1 to
  64 of [A-Za-z0-9_-]. Its TypeScript specification is jobIdFor / parseJobId in
  src/contracts/names.ts; test/integration/ledger-rules.test.ts checks the two agree.
]]
local function jobIdFor(worker, token)
  return worker .. "~" .. token
end

-- The worker and the token of a job id; nil for a string that is no job id.
local function parseJobId(jobId)
  local worker, token = string.match(jobId, "^([A-Za-z0-9_.%-]+)~([A-Za-z0-9_%-]+)$")
  if worker == nil or #worker > 80 or #token > 64 then return nil end
  return worker, token
end
