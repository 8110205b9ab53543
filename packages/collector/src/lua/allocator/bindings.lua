--[[
allocator/bindings: the names bound to one resource whose binding has not expired.
Runs after lib.lua (KEYS[1..10]: the pool's keys, see there).

ARGV[1]  resource key
Returns the binding names, in byte order.
]]

lib()
local now = now_ms()
local out = {}
for _, name in ipairs(H.names_of(ARGV[1])) do
  local e = redis.call('ZSCORE', K_BEXP, name)
  if e and tonumber(e) > now then out[#out + 1] = name end
end
return out
