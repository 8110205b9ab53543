--[[
tasks/lib: what tq-claim and tq-finish share (each is this file followed by its own).
A claim takes, for a worker: first a task whose worker stopped renewing it (its visibility passed:
the worker died), then the oldest ready one of the names asked for. A task whose attempts ran out
is failed (its waiters are told) instead of being run again; one past its lifetime is dropped.
Only a task in the state its place says is taken: one of a ready list must be queued, and of that
list's name (an id whose task expired unclaimed, then was queued again, is in the list twice; its
second copy is skipped, as is a copy left behind by a task now of another name); one of the running
zset must be running. A task is so never claimed twice while it runs, but once its worker died.
Each name has its own running zset: the stale claims of other names (tasks of names no live worker
runs) never hide those of the names asked for, and every stale claim looked at is taken or removed.
It expires with the longest-lived of the tasks claimed in it, should no worker of its name come back.
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

-- base: '<prefix>tq:{<namespace>}:'; names: the names this worker runs; lists and runs: their ready
-- lists' and running zsets' keys, in the order of `names`. Returns {id, name, params, attempt,
-- token, current, total} or false.
local function tq_claim(base, worker, vis, names, lists, runs)
  local now = tq_now()
  -- Takes task `id` of `name` (its running zset `rkey`) if it is `want` ('queued' or 'running').
  local function take(id, want, name, rkey)
    local tkey = base .. 't:' .. id
    local f = redis.call('HMGET', tkey, 'name', 'params', 'status', 'attempts', 'max', 'token', 'expires', 'current', 'total')
    if f[3] ~= want or f[1] ~= name then
      -- A claim left by a task that finished, expired or was queued anew under this id: gone.
      if want == 'running' then redis.call('ZREM', rkey, id) end
      return nil
    end
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
    -- A claim matters while its task lives: the zset expires with the longest-lived of its tasks.
    local left = tonumber(f[7]) and tonumber(f[7]) - now
    if left and redis.call('PTTL', rkey) < left then redis.call('PEXPIRE', rkey, left) end
    return {id, f[1], f[2], attempts + 1, token, f[8] or false, f[9] or false}
  end
  for i, name in ipairs(names) do
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', runs[i], '-inf', now, 'LIMIT', 0, 20)) do
      local got = take(id, 'running', name, runs[i])
      if got then return got end
    end
  end
  for i, name in ipairs(names) do
    while true do
      local id = redis.call('LPOP', lists[i])
      if not id then break end
      local got = take(id, 'queued', name, runs[i])
      if got then return got end
    end
  end
  return false
end
