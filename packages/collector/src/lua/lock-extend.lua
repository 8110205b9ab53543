--[[
lock-extend: sets a new ttl on a lock, only for the owner and the acquisition that holds it.

KEYS[1]  lock hash      <prefix>lock:{<name>}
ARGV[1]  owner
ARGV[2]  fencing token the caller holds, '' to accept any acquisition by this owner
ARGV[3]  ttl, ms
Returns 1 extended, 0 held by another owner or acquisition, -1 not held at all (expired).
]]
local cur = redis.call('HMGET', KEYS[1], 'o', 'f')
if not cur[1] then return -1 end
if cur[1] ~= ARGV[1] or (ARGV[2] ~= '' and cur[2] ~= ARGV[2]) then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
