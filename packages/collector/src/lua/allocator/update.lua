--[[
allocator/update: extends one hold, only for its owner and fence and only while it has not expired.
Runs after lib.lua (KEYS[1..10]: the pool's keys, see there).

ARGV[1]  owner token
ARGV[2]  fence of the hold
ARGV[3]  new timeout (ms) from now
ARGV[4]  resource key
Returns the new hold expiry (ms), or 0 when the hold was lost (an expired hold of the owner is
ended then).
]]

lib()
local now = now_ms()
local key = ARGV[4]
local fence, who = H.holder(key)
if not fence or who ~= ARGV[1] or fence ~= tonumber(ARGV[2]) then return 0 end
local e = redis.call('ZSCORE', K_HEXP, key)
if not e or tonumber(e) <= now then
  H.end_hold(key, now)
  return 0
end
local expires = now + tonumber(ARGV[3])
redis.call('ZADD', K_HEXP, expires, key)
H.lower_due(expires)
return expires
