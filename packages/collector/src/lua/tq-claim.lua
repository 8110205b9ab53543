--[[
tq-claim: gives a worker its next task: first one whose worker stopped renewing it (visibility
timeout passed: the worker died), then the oldest ready one of the names asked for.

KEYS[1]  the running zset   <prefix>tq:{<namespace>}:running (member id, score: visibility deadline, ms)
KEYS[2 ..] the ready lists of the names this worker runs
ARGV[1]  the key prefix of tasks, waiters and lists: <prefix>tq:{<namespace>}: (the same hash tag as
         KEYS, so every key lies in one slot)
ARGV[2]  the worker's id
ARGV[3]  visibility timeout (ms): renewed while the task runs
ARGV[4]  the reply-message prefix for tasks given up ('' : none)
ARGV[5 ..] the names this worker runs (as in KEYS[2 ..])
Returns {id, name, params, attempt, token, current, total} or false when there is nothing to run.
A task whose attempts ran out is failed (its waiters are told) instead of being run again.
]]
local rkey, base = KEYS[1], ARGV[1]
local worker, vis = ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local names = {}
for i = 5, #ARGV do names[ARGV[i]] = true end

local function notify(id, msg)
  local wkey = base .. 'w:' .. id
  for _, ch in ipairs(redis.call('SMEMBERS', wkey)) do redis.call('PUBLISH', ch, msg) end
  redis.call('DEL', wkey)
end

local function take(id)
  local tkey = base .. 't:' .. id
  local f = redis.call('HMGET', tkey, 'name', 'params', 'status', 'attempts', 'max', 'token', 'expires', 'current', 'total')
  if not f[1] then redis.call('ZREM', rkey, id); return nil end
  if tonumber(f[7]) and tonumber(f[7]) <= now then
    redis.call('ZREM', rkey, id)
    return nil
  end
  local attempts, max = tonumber(f[4]) or 0, tonumber(f[5]) or 1
  if attempts >= max then
    local err = cjson.encode({name = 'TaskError', code = 'LC_TASK_GAVE_UP', message = 'gave up after ' .. attempts .. ' attempt(s): every worker that took it stopped before finishing'})
    redis.call('HSET', tkey, 'status', 'failed', 'error', err)
    redis.call('ZREM', rkey, id)
    notify(id, cjson.encode({id = id, type = 'failed', error = err}))
    return nil
  end
  local token = (tonumber(f[6]) or 0) + 1
  redis.call('HSET', tkey, 'status', 'running', 'attempts', attempts + 1, 'token', token, 'worker', worker)
  redis.call('ZADD', rkey, now + vis, id)
  return {id, f[1], f[2], attempts + 1, token, f[8] or false, f[9] or false}
end

-- A task whose worker stopped renewing it, when this worker runs its name.
local stale = redis.call('ZRANGEBYSCORE', rkey, '-inf', now, 'LIMIT', 0, 20)
for _, id in ipairs(stale) do
  local name = redis.call('HGET', base .. 't:' .. id, 'name')
  if not name then
    redis.call('ZREM', rkey, id)
  elseif names[name] then
    local got = take(id)
    if got then return got end
  end
end
for i = 2, #KEYS do
  while true do
    local id = redis.call('LPOP', KEYS[i])
    if not id then break end
    local got = take(id)
    if got then return got end
  end
end
return false
