--[[
tasks/claim: gives a worker its next task (see lib.lua, prepended).

KEYS[1]  the running zset   <prefix>tq:{<namespace>}:running (member id, score: visibility deadline, ms)
KEYS[2 ..] the ready lists of the names this worker runs
ARGV[1]  the key prefix of tasks and waiters: <prefix>tq:{<namespace>}: (the hash tag of KEYS)
ARGV[2]  the worker's id
ARGV[3]  visibility timeout (ms): renewed while the task runs
ARGV[4]  unused ('')
ARGV[5 ..] the names this worker runs (as in KEYS[2 ..])
Returns {id, name, params, attempt, token, current, total} or false when there is nothing to run.
]]
local names, lists = {}, {}
for i = 5, #ARGV do names[#names + 1] = ARGV[i] end
for i = 2, #KEYS do lists[#lists + 1] = KEYS[i] end
return tq_claim(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), lists, names)
