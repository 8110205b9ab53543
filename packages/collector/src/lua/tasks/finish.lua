--[[
tasks/finish: records a task's outcome, once: only the claim that holds it can, so a worker that was
taken over (it stalled past its visibility timeout) cannot answer a second time.

KEYS[1]  the task hash    KEYS[2] the running zset of its name    KEYS[3] the waiters set
ARGV[1]  id   ARGV[2] the claim's token   ARGV[3] 'done' or 'failed'
ARGV[4]  the result (done) or the error (failed), JSON
ARGV[5]  '' to stop there; else the worker takes its next task in the same call (see lib.lua,
         prepended): ARGV[5] the key prefix, ARGV[6] the worker's id, ARGV[7] visibility timeout
         (ms), ARGV[8 ..] the names it runs, KEYS[4 ..] per name its ready list then its running
         zset (as tq-claim takes them)
The outcome is kept for the task's 'keep' ms (set when it was queued) for callers that ask again.
Returns {recorded, next}: recorded 1 when recorded (the waiters are told), 0 when the task was not
this claim's any more; next the worker's next task as tq-claim gives it, or false.
]]
local tkey, rkey, wkey = KEYS[1], KEYS[2], KEYS[3]
local function next_task()
  if ARGV[5] == '' then return false end
  local names, lists, runs = {}, {}, {}
  for i = 8, #ARGV do
    names[#names + 1] = ARGV[i]
    lists[#lists + 1] = KEYS[2 + 2 * #names]
    runs[#runs + 1] = KEYS[3 + 2 * #names]
  end
  return tq_claim(ARGV[5], ARGV[6], tonumber(ARGV[7]), names, lists, runs)
end

local f = redis.call('HMGET', tkey, 'status', 'token', 'keep')
if f[1] ~= 'running' or f[2] ~= ARGV[2] then return {0, next_task()} end
local field = ARGV[3] == 'done' and 'result' or 'error'
redis.call('HSET', tkey, 'status', ARGV[3], field, ARGV[4])
redis.call('ZREM', rkey, ARGV[1])
local msg = '{"id":' .. cjson.encode(ARGV[1]) .. ',"type":"' .. ARGV[3] .. '","' .. field .. '":' .. cjson.encode(ARGV[4]) .. '}'
for _, ch in ipairs(redis.call('SMEMBERS', wkey)) do redis.call('PUBLISH', ch, msg) end
redis.call('DEL', wkey)
redis.call('PEXPIRE', tkey, tonumber(f[3]) or 60000)
return {1, next_task()}
