--[[
allocator/lib: helpers shared by every alloc-*.lua script; the loader puts this text before each of
them, so every script sees the same KEYS layout and the same rules.

KEYS (the same ten, in this order, for every alloc-*.lua script; T = <prefix>alloc:{<pool>}):
KEYS[1]  T:res   hash  resource key -> priority (integer); membership in the pool
KEYS[2]  T:rexp  zset  resource key -> expiry (ms, server clock) of resources added with a timeout
KEYS[3]  T:free  zset  free resource key -> -priority * 2^32 + round-robin sequence (lowest first)
KEYS[4]  T:held  hash  held resource key -> '<fence>:<owner>' (exclusive pools only)
KEYS[5]  T:hexp  zset  held resource key -> hold expiry (ms)
KEYS[6]  T:sick  zset  unhealthy resource key -> end of the unhealthy period (ms)
KEYS[7]  T:bind  hash  binding name -> resource key
KEYS[8]  T:bexp  zset  binding name -> binding expiry (ms)
KEYS[9]  T:bidx  zset  (scores 0) '<resource key>\0<binding name>', the bindings by resource
KEYS[10] T:meta  hash  seq (last round-robin sequence), fence (last fencing token), due and sick
                       (below), gc cursors

Rules: a resource of the pool is free, or held, or unhealthy; never free and held, never free and
unhealthy (held and unhealthy at once is allowed: the holder keeps it, it returns as unhealthy).
Times come from the server's clock (TIME), never from a client's.

`due` is a lower bound of every score in T:rexp, T:hexp, T:sick and T:bexp (absent: 0, unknown).
While the server's clock is below it nothing in the pool has expired and no unhealthy period has
ended, so malloc and free skip the reclaim and the expiry checks. Every script that adds an expiry
lowers it (lower_due); the reclaim of malloc and gc set it again from the four indexes
(refresh_due). `sick` is present whenever T:sick may hold an entry (health sets it, refresh_due
clears it). Every client of a pool must run scripts that keep both.

This text runs before the script on every call, and each function it makes costs time on every
call (the more upvalues, the more): the common cases of malloc and free (nothing due, no binding, no
unhealthy resource) need only now_ms and push_free. lib() makes every other helper as a field of H
(H.drop, H.settle…); the scripts call it when they need them.
]]

local K_RES, K_REXP, K_FREE, K_HELD, K_HEXP = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local K_SICK, K_BIND, K_BEXP, K_BIDX, K_META = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]

-- Scores of the free set: -priority * LEVEL + sequence, so a higher priority sorts first and,
-- within one priority, the resource freed longest ago. |priority| < 2^20 keeps scores below 2^53.
local LEVEL = 4294967296

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The pool's `due` as this script last read or wrote it (nil: not read yet).
local due = nil

-- Every other helper, made by lib().
local H = {}
local lib

-- Puts a resource at the tail of its priority level in the free set.
local function push_free(key, prio)
  local seq = redis.call('HINCRBY', K_META, 'seq', 1)
  if seq >= LEVEL then
    lib()
    H.renumber()
    seq = redis.call('HINCRBY', K_META, 'seq', 1)
  end
  redis.call('ZADD', K_FREE, -prio * LEVEL + seq, key)
end

-- Makes every other helper, once per call of a script. It declares the keys again so that its
-- functions capture its own locals: as a closure of few upvalues it costs little to make.
lib = function()
  if H.drop then return end
  local K_RES, K_REXP, K_FREE, K_HELD, K_HEXP = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
  local K_SICK, K_BIND, K_BEXP, K_BIDX, K_META = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
  -- NEVER: `due` when the four expiry indexes are empty (past any clock)
  local LEVEL, NEVER = 4294967296, 9007199254740992
  local read_due, lower_due, holder, settle, catch_up, renumber, unbind, bind
  local names_of, drop, expired_resource, end_hold, reclaim, refresh_due

  -- Reads the pool's `due` (0 when unknown).
  read_due = function()
    due = tonumber(redis.call('HGET', K_META, 'due')) or 0
    return due
  end

  -- Keeps `due` a lower bound: call it with the score of every expiry a script adds.
  lower_due = function(t)
    if due == nil then read_due() end
    if t < due then
      due = t
      redis.call('HSET', K_META, 'due', string.format('%.0f', t))
    end
  end

  -- The holder '<fence>:<owner>' of a resource as fence (number), owner; nil when not held.
  holder = function(key)
    local v = redis.call('HGET', K_HELD, key)
    if not v then return nil end
    local fence, owner = string.match(v, '^(%d+):(.*)$')
    return tonumber(fence), owner
  end

  -- A resource that just stopped being held or unhealthy: back to the free set unless it left the
  -- pool, expired, is still unhealthy or is still held. `released`: the caller has just ended its
  -- hold, so it is neither held nor free (two reads fewer).
  settle = function(key, now, released)
    local prio = redis.call('HGET', K_RES, key)
    if not prio then return end
    if due == nil then read_due() end
    if now >= due then
      if expired_resource(key, now) then
        drop(key)
        return
      end
    end
    local sick = redis.call('ZSCORE', K_SICK, key)
    if sick then
      if tonumber(sick) > now then return end
      redis.call('ZREM', K_SICK, key)
    end
    if not released then
      if redis.call('HEXISTS', K_HELD, key) == 1 then return end
      if redis.call('ZSCORE', K_FREE, key) then return end
    end
    push_free(key, tonumber(prio) or 0)
  end

  -- Does the due work (up to `limit` of each kind, see reclaim) once the clock has passed `due`.
  -- Returns true when nothing in the pool has expired: the caller may skip its expiry checks.
  catch_up = function(now, limit)
    if now < read_due() then return true end
    reclaim(now, limit)
    return now < refresh_due()
  end

  -- Renumbers the free set 1..n (same order) when the sequence would reach 2^32: once in 4
  -- billion pushes, so its O(n) cost is nothing per push.
  renumber = function()
    local all = redis.call('ZRANGE', K_FREE, 0, -1)
    for i, key in ipairs(all) do
      local prio = tonumber(redis.call('HGET', K_RES, key)) or 0
      redis.call('ZADD', K_FREE, -prio * LEVEL + i, key)
    end
    redis.call('HSET', K_META, 'seq', #all)
  end

  unbind = function(name)
    local old = redis.call('HGET', K_BIND, name)
    if old then
      redis.call('HDEL', K_BIND, name)
      redis.call('ZREM', K_BIDX, old .. '\0' .. name)
    end
    redis.call('ZREM', K_BEXP, name)
  end

  bind = function(name, key, expires)
    unbind(name)
    redis.call('HSET', K_BIND, name, key)
    redis.call('ZADD', K_BEXP, expires, name)
    lower_due(expires)
    redis.call('ZADD', K_BIDX, 0, key .. '\0' .. name)
  end

  -- The binding names that point at a resource (O(log n + m) by the index).
  names_of = function(key)
    local members = redis.call('ZRANGEBYLEX', K_BIDX, '[' .. key .. '\0', '(' .. key .. '\1')
    local names = {}
    for i, m in ipairs(members) do names[i] = string.sub(m, #key + 2) end
    return names
  end

  -- Removes a resource from the pool and everything that refers to it (its hold, its bindings).
  drop = function(key)
    redis.call('HDEL', K_RES, key)
    redis.call('ZREM', K_REXP, key)
    redis.call('ZREM', K_FREE, key)
    redis.call('HDEL', K_HELD, key)
    redis.call('ZREM', K_HEXP, key)
    redis.call('ZREM', K_SICK, key)
    for _, name in ipairs(names_of(key)) do unbind(name) end
  end

  expired_resource = function(key, now)
    local e = redis.call('ZSCORE', K_REXP, key)
    return e and tonumber(e) <= now
  end

  -- Ends a hold (the caller checked its owner) and settles the resource.
  end_hold = function(key, now)
    redis.call('HDEL', K_HELD, key)
    redis.call('ZREM', K_HEXP, key)
    settle(key, now)
  end

  -- Returns up to `limit` of each kind of due work: expired resources removed, expired holds
  -- returned, ended unhealthy periods returned, expired bindings removed. O(k log n).
  reclaim = function(now, limit)
    local done = {0, 0, 0, 0}
    for _, key in ipairs(redis.call('ZRANGEBYSCORE', K_REXP, '-inf', now, 'LIMIT', 0, limit)) do
      drop(key)
      done[1] = done[1] + 1
    end
    for _, key in ipairs(redis.call('ZRANGEBYSCORE', K_HEXP, '-inf', now, 'LIMIT', 0, limit)) do
      end_hold(key, now)
      done[2] = done[2] + 1
    end
    for _, key in ipairs(redis.call('ZRANGEBYSCORE', K_SICK, '-inf', now, 'LIMIT', 0, limit)) do
      redis.call('ZREM', K_SICK, key)
      settle(key, now)
      done[3] = done[3] + 1
    end
    for _, name in ipairs(redis.call('ZRANGEBYSCORE', K_BEXP, '-inf', now, 'LIMIT', 0, limit)) do
      unbind(name)
      done[4] = done[4] + 1
    end
    return done
  end

  -- Sets `due` to the earliest score of the four expiry indexes (NEVER when they are empty), and
  -- `sick` to whether T:sick holds anything.
  refresh_due = function()
    local least = NEVER
    local sick = false
    for _, k in ipairs({K_REXP, K_HEXP, K_SICK, K_BEXP}) do
      local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
      if first[2] then
        least = math.min(least, tonumber(first[2]))
        if k == K_SICK then sick = true end
      end
    end
    due = least
    redis.call('HSET', K_META, 'due', string.format('%.0f', least))
    if sick then redis.call('HSET', K_META, 'sick', 1) else redis.call('HDEL', K_META, 'sick') end
    return least
  end
  H.read_due = read_due
  H.lower_due = lower_due
  H.holder = holder
  H.settle = settle
  H.catch_up = catch_up
  H.renumber = renumber
  H.unbind = unbind
  H.bind = bind
  H.names_of = names_of
  H.drop = drop
  H.expired_resource = expired_resource
  H.end_hold = end_hold
  H.reclaim = reclaim
  H.refresh_due = refresh_due
end

-- The body of the script follows.
