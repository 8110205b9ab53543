--[[
allocator/health: marks resources unhealthy for a while (out of rotation; a holder keeps its hold and
the resource returns unhealthy), or healthy again at once.
Runs after lib.lua (KEYS[1..10]: the pool's keys, see there).

ARGV[1]  'sick' or 'well'
ARGV[2]  duration (ms) of the unhealthy period (sick)
ARGV[3..] resource keys
Returns the number of listed resources that are in the pool.
]]

lib()
local now = now_ms()
-- T:sick may hold entries from now on (see `sick` in lib.lua)
if ARGV[1] == 'sick' and #ARGV > 2 then redis.call('HSET', K_META, 'sick', 1) end
local n = 0
for i = 3, #ARGV do
  local key = ARGV[i]
  if redis.call('HEXISTS', K_RES, key) == 1 then
    n = n + 1
    if ARGV[1] == 'sick' then
      redis.call('ZREM', K_FREE, key)
      redis.call('ZADD', K_SICK, now + tonumber(ARGV[2]), key)
      H.lower_due(now + tonumber(ARGV[2]))
    else
      redis.call('ZREM', K_SICK, key)
      H.settle(key, now)
    end
  end
end
return n
