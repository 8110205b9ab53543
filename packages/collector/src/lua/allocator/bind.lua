--[[
allocator/bind: sets or removes a soft binding (name -> resource key).
Runs after lib.lua (KEYS[1..10]: the pool's keys, see there).

ARGV[1]  'bind' or 'unbind'
ARGV[2]  binding name
ARGV[3]  resource key (bind)
ARGV[4]  binding timeout (ms) (bind)
Returns 1 when bound (the key is in the pool) or when a binding was removed, else 0.
]]

lib()
local now = now_ms()
local name = ARGV[2]
if ARGV[1] == 'unbind' then
  local had = redis.call('HEXISTS', K_BIND, name)
  H.unbind(name)
  return had
end
local key = ARGV[3]
if redis.call('HEXISTS', K_RES, key) == 0 then return 0 end
H.bind(name, key, now + tonumber(ARGV[4]))
return 1
