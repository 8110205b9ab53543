--[[
allocator/gc: one incremental garbage-collection step of a pool. First the due work, by the expiry
indexes (at most ARGV[2] of each kind): expired resources removed, expired holds returned, ended
unhealthy periods returned, expired bindings removed. Then a repair pass over ARGV[2] entries
(a COUNT hint) of each structure, resuming at the cursors stored in T:meta ('c:<structure>'), that
restores the rules of lib.lua: a resource in no state goes back to the free set, a free entry
that is also held or unhealthy leaves the free set, entries of resources not in the pool go, a
hold without expiry (or any hold of a shared pool) ends, bindings and their index agree.
Runs after lib.lua (KEYS[1..10]: the pool's keys, see there).

ARGV[1]  'x' exclusive, 's' shared
ARGV[2]  count
Returns {resources removed, holds returned, unhealthy periods ended, bindings removed, repairs}.
]]

lib()
local now = now_ms()
local exclusive = ARGV[1] == 'x'
local count = tonumber(ARGV[2])
local done = H.reclaim(now, count)
local repaired = 0

local function in_pool(key) return redis.call('HEXISTS', K_RES, key) == 1 end

-- Scans `count` more entries of one structure from its stored cursor.
local function scan(key, field, hash, fn)
  local cursor = redis.call('HGET', K_META, field) or '0'
  local r = redis.call(hash and 'HSCAN' or 'ZSCAN', key, cursor, 'COUNT', count)
  local items = r[2]
  for i = 1, #items, 2 do fn(items[i], items[i + 1]) end
  redis.call('HSET', K_META, field, r[1])
end

scan(K_RES, 'c:res', true, function(key, prio)
  if not tonumber(prio) then
    redis.call('HSET', K_RES, key, 0)
    repaired = repaired + 1
  end
  local held = redis.call('HEXISTS', K_HELD, key) == 1
  if held and not exclusive then
    H.end_hold(key, now)
    held = false
    repaired = repaired + 1
  end
  local free = redis.call('ZSCORE', K_FREE, key)
  local sick = redis.call('ZSCORE', K_SICK, key)
  if free and (held or sick) then
    redis.call('ZREM', K_FREE, key)
    repaired = repaired + 1
  elseif not free and not held and not sick then
    push_free(key, tonumber(redis.call('HGET', K_RES, key)) or 0)
    repaired = repaired + 1
  end
end)

local function orphan(key, index, remove)
  scan(index, key, false, function(member)
    if not in_pool(member) then
      redis.call(remove, index, member)
      repaired = repaired + 1
    end
  end)
end
orphan('c:free', K_FREE, 'ZREM')
orphan('c:rexp', K_REXP, 'ZREM')
orphan('c:sick', K_SICK, 'ZREM')

scan(K_HELD, 'c:held', true, function(key, value)
  if not in_pool(key) then
    redis.call('HDEL', K_HELD, key)
    redis.call('ZREM', K_HEXP, key)
    repaired = repaired + 1
  elseif not exclusive or not string.match(value, '^%d+:') or not redis.call('ZSCORE', K_HEXP, key) then
    H.end_hold(key, now)
    repaired = repaired + 1
  end
end)

scan(K_HEXP, 'c:hexp', false, function(key)
  if redis.call('HEXISTS', K_HELD, key) == 0 then
    redis.call('ZREM', K_HEXP, key)
    repaired = repaired + 1
  end
end)

scan(K_BIND, 'c:bind', true, function(name, key)
  if not in_pool(key) or not redis.call('ZSCORE', K_BEXP, name) then
    H.unbind(name)
    repaired = repaired + 1
  elseif not redis.call('ZSCORE', K_BIDX, key .. '\0' .. name) then
    redis.call('ZADD', K_BIDX, 0, key .. '\0' .. name)
    repaired = repaired + 1
  end
end)

scan(K_BEXP, 'c:bexp', false, function(name)
  if redis.call('HEXISTS', K_BIND, name) == 0 then
    redis.call('ZREM', K_BEXP, name)
    repaired = repaired + 1
  end
end)

scan(K_BIDX, 'c:bidx', false, function(member)
  local sep = string.find(member, '\0', 1, true)
  local ok = false
  if sep then
    ok = redis.call('HGET', K_BIND, string.sub(member, sep + 1)) == string.sub(member, 1, sep - 1)
  end
  if not ok then
    redis.call('ZREM', K_BIDX, member)
    repaired = repaired + 1
  end
end)

-- the repairs may have met entries no script wrote (so `due` may not cover them): set it afresh
H.refresh_due()
return {done[1], done[2], done[3], done[4], repaired}
