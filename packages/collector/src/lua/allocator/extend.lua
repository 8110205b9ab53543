--[[
allocator/extend: adds resources to a pool or refreshes them (extend), or replaces the pool (assign).
Runs after lib.lua (KEYS[1..10]: the pool's keys, see there).

ARGV[1]  timeout (ms) after which the resources leave the pool, '' for none (clears an expiry)
ARGV[2]  priority (integer), '' to keep the priority of existing resources (new ones get 0)
ARGV[3]  '1' to replace the pool (resources not listed are removed with their holds and
         bindings), '0' to add
ARGV[4..] resource keys
Returns {added, removed}: resources new to the pool, and resources removed (assign only).
]]

lib()
local now = now_ms()
local timeout = ARGV[1]
local priority = ARGV[2]
local removed = 0
if ARGV[3] == '1' then
  local keep = {}
  for i = 4, #ARGV do keep[ARGV[i]] = true end
  for _, key in ipairs(redis.call('HKEYS', K_RES)) do
    if not keep[key] then
      H.drop(key)
      removed = removed + 1
    end
  end
end

local added = 0
for i = 4, #ARGV do
  local key = ARGV[i]
  local old = redis.call('HGET', K_RES, key)
  local prio = tonumber(old) or 0
  if priority ~= '' then prio = tonumber(priority) end
  if timeout ~= '' then
    redis.call('ZADD', K_REXP, now + tonumber(timeout), key)
    H.lower_due(now + tonumber(timeout))
  else
    redis.call('ZREM', K_REXP, key)
  end
  redis.call('HSET', K_RES, key, prio)
  if not old then
    added = added + 1
  elseif tonumber(old) ~= prio and redis.call('ZREM', K_FREE, key) == 1 then
    -- a new priority moves a free resource to the tail of its new level
    push_free(key, prio)
  end
  H.settle(key, now)
end
return {added, removed}
