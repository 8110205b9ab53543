--[[
tasks/lib: what tq-claim and tq-finish share (each is this file followed by its own).
A claim takes, for a worker: first a task whose worker stopped renewing it (its visibility passed:
the worker died), then the oldest ready one of the names asked for. A task whose attempts ran out
is failed (its waiters are told) instead of being run again; one past its lifetime is dropped.
Every key lies under one hash tag (`base`), so a script touches one slot.
]]
local function tq_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function tq_notify(base, id, msg)
  local wkey = base .. 'w:' .. id
  for _, ch in ipairs(redis.call('SMEMBERS', wkey)) do redis.call('PUBLISH', ch, msg) end
  redis.call('DEL', wkey)
end

-- rkey: the running zset; base: '<prefix>tq:{<namespace>}:'; lists: the ready lists' keys;
-- names: a set of the names this worker runs. Returns {id, name, params, attempt, token, current,
-- total} or false.
local function tq_claim(rkey, base, worker, vis, lists, names)
  local now = tq_now()
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
      tq_notify(base, id, cjson.encode({id = id, type = 'failed', error = err}))
      return nil
    end
    local token = (tonumber(f[6]) or 0) + 1
    redis.call('HSET', tkey, 'status', 'running', 'attempts', attempts + 1, 'token', token, 'worker', worker)
    redis.call('ZADD', rkey, now + vis, id)
    return {id, f[1], f[2], attempts + 1, token, f[8] or false, f[9] or false}
  end
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
  for _, list in ipairs(lists) do
    while true do
      local id = redis.call('LPOP', list)
      if not id then break end
      local got = take(id)
      if got then return got end
    end
  end
  return false
end
