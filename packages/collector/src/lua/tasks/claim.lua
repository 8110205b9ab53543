--[[
tasks/claim: gives a worker its next task (see lib.lua, prepended).

KEYS     per name this worker runs, in the order of ARGV[5 ..]: its ready list
         <prefix>tq:{<namespace>}:q:<name>, then its running zset <prefix>tq:{<namespace>}:running:<name>
         (member id, score: visibility deadline, ms)
ARGV[1]  the key prefix of tasks and waiters: <prefix>tq:{<namespace>}: (the hash tag of KEYS)
ARGV[2]  the worker's id
ARGV[3]  visibility timeout (ms): renewed while the task runs
ARGV[4]  unused ('')
ARGV[5 ..] the names this worker runs
Returns {id, name, params, attempt, token, current, total} or false when there is nothing to run.
]]
local names, lists, runs = {}, {}, {}
for i = 5, #ARGV do
  names[#names + 1] = ARGV[i]
  lists[#lists + 1] = KEYS[2 * #names - 1]
  runs[#runs + 1] = KEYS[2 * #names]
end
return tq_claim(ARGV[1], ARGV[2], tonumber(ARGV[3]), names, lists, runs)
