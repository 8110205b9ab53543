--[[
alloc-lib: helpers shared by every alloc-*.lua script; the loader puts this text before each of
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
KEYS[10] T:meta  hash  seq (last round-robin sequence), fence (last fencing token), gc cursors

Rules: a resource of the pool is free, or held, or unhealthy; never free and held, never free and
unhealthy (held and unhealthy at once is allowed: the holder keeps it, it returns as unhealthy).
Times come from the server's clock (TIME), never from a client's.
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

-- Calls a variadic command on a long list in slices (Lua's unpack has a stack limit).
local function each_slice(list, fn)
  local n = #list
  local i = 1
  while i <= n do
    local j = math.min(i + 999, n)
    fn(unpack(list, i, j))
    i = j + 1
  end
end

-- Renumbers the free set 1..n (same order) when the sequence would reach 2^32: once in 4 billion
-- pushes, so its O(n) cost is nothing per push.
local function renumber()
  local all = redis.call('ZRANGE', K_FREE, 0, -1)
  for i, key in ipairs(all) do
    local prio = tonumber(redis.call('HGET', K_RES, key)) or 0
    redis.call('ZADD', K_FREE, -prio * LEVEL + i, key)
  end
  redis.call('HSET', K_META, 'seq', #all)
end

-- Puts a resource at the tail of its priority level in the free set.
local function push_free(key, prio)
  local seq = redis.call('HINCRBY', K_META, 'seq', 1)
  if seq >= LEVEL then
    renumber()
    seq = redis.call('HINCRBY', K_META, 'seq', 1)
  end
  redis.call('ZADD', K_FREE, -prio * LEVEL + seq, key)
end

local function unbind(name)
  local old = redis.call('HGET', K_BIND, name)
  if old then
    redis.call('HDEL', K_BIND, name)
    redis.call('ZREM', K_BIDX, old .. '\0' .. name)
  end
  redis.call('ZREM', K_BEXP, name)
end

local function bind(name, key, expires)
  unbind(name)
  redis.call('HSET', K_BIND, name, key)
  redis.call('ZADD', K_BEXP, expires, name)
  redis.call('ZADD', K_BIDX, 0, key .. '\0' .. name)
end

-- The binding names that point at a resource (O(log n + m) by the index).
local function names_of(key)
  local members = redis.call('ZRANGEBYLEX', K_BIDX, '[' .. key .. '\0', '(' .. key .. '\1')
  local names = {}
  for i, m in ipairs(members) do names[i] = string.sub(m, #key + 2) end
  return names
end

-- Removes a resource from the pool and everything that refers to it (its hold, its bindings).
local function drop(key)
  redis.call('HDEL', K_RES, key)
  redis.call('ZREM', K_REXP, key)
  redis.call('ZREM', K_FREE, key)
  redis.call('HDEL', K_HELD, key)
  redis.call('ZREM', K_HEXP, key)
  redis.call('ZREM', K_SICK, key)
  for _, name in ipairs(names_of(key)) do unbind(name) end
end

local function expired_resource(key, now)
  local e = redis.call('ZSCORE', K_REXP, key)
  return e and tonumber(e) <= now
end

-- A resource that just stopped being held or unhealthy: back to the free set unless it left the
-- pool, expired, is still unhealthy or is still held.
local function settle(key, now)
  local prio = redis.call('HGET', K_RES, key)
  if not prio then return end
  if expired_resource(key, now) then
    drop(key)
    return
  end
  local sick = redis.call('ZSCORE', K_SICK, key)
  if sick then
    if tonumber(sick) > now then return end
    redis.call('ZREM', K_SICK, key)
  end
  if redis.call('HEXISTS', K_HELD, key) == 1 then return end
  if redis.call('ZSCORE', K_FREE, key) then return end
  push_free(key, tonumber(prio))
end

-- Ends a hold (the caller checked its owner) and settles the resource.
local function end_hold(key, now)
  redis.call('HDEL', K_HELD, key)
  redis.call('ZREM', K_HEXP, key)
  settle(key, now)
end

-- Returns up to `limit` of each kind of due work: expired resources removed, expired holds
-- returned, ended unhealthy periods returned, expired bindings removed. O(k log n).
local function reclaim(now, limit)
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

-- The holder '<fence>:<owner>' of a resource as fence (number), owner; nil when not held.
local function holder(key)
  local v = redis.call('HGET', K_HELD, key)
  if not v then return nil end
  local fence, owner = string.match(v, '^(%d+):(.*)$')
  return tonumber(fence), owner
end

-- The body of the script follows.
