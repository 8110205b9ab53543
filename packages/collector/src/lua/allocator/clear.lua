--[[
allocator/clear: empties a pool: every resource, hold, unhealthy mark and binding. The sequence and
the fencing token stay in T:meta, so fences keep increasing across a clear.
Runs after lib.lua (KEYS[1..10]: the pool's keys, see there).

ARGV: none
Returns the number of resources the pool held.
]]

lib()
local n = redis.call('HLEN', K_RES)
redis.call('DEL', K_RES, K_REXP, K_FREE, K_HELD, K_HEXP, K_SICK, K_BIND, K_BEXP, K_BIDX)
for _, field in ipairs(redis.call('HKEYS', K_META)) do
  if string.sub(field, 1, 2) == 'c:' then redis.call('HDEL', K_META, field) end
end
return n
