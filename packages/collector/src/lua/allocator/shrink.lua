--[[
allocator/shrink: removes resources from a pool, with their holds and their bindings.
Runs after lib.lua (KEYS[1..10]: the pool's keys, see there).

ARGV[1..] resource keys
Returns the number of resources that were in the pool.
]]

lib()
local removed = 0
for i = 1, #ARGV do
  if redis.call('HEXISTS', K_RES, ARGV[i]) == 1 then removed = removed + 1 end
  H.drop(ARGV[i])
end
return removed
