--[[
registry/drop: removes one entry when it is gone or expired (cleanupExpired), or always (unregister).

KEYS[1]  the entry hash   <prefix>registry:{<namespace>}:e:<id>
KEYS[2]  the index zset   <prefix>registry:{<namespace>}:index
ARGV[1]  the entry's id (the index member)
ARGV[2]  '' to remove it whatever its state; otherwise expireAfter (ms): remove it only when its
         hash is gone or its last heartbeat is at least that old (Redis clock)
Returns 1 when something was removed, 0 otherwise.

Checked and removed in one step, so a heartbeat that lands meanwhile is never undone.
]]
local ekey, ikey = KEYS[1], KEYS[2]
if ARGV[2] ~= '' then
  local hb = tonumber(redis.call('HGET', ekey, 'hb'))
  if hb then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    if now - hb < tonumber(ARGV[2]) then return 0 end
  end
end
local n = redis.call('DEL', ekey) + redis.call('ZREM', ikey, ARGV[1])
if n > 0 then return 1 end
return 0
