--[[
locks/acquire: takes a free lock for an owner, atomically (lock(); rlock() runs reenter.lua).

KEYS[1]  lock           <prefix>lock:{<name>}          string '<fence>:<re-entries>:<owner>', with the ttl
KEYS[2]  fence counter  <prefix>lock:{<name>}:fence    strictly increasing per name, never expires
KEYS[3]  waiting mark   <prefix>lock:{<name>}:waiting  set while someone waits: release.lua then publishes
ARGV[1]  owner
ARGV[2]  ttl, ms
ARGV[3]  mark the lock as waited for: '' never (lock()), 'f' when it is held (a waiter of
         acquire()), 'a' also when the caller takes it (others wait behind the caller)
Returns the fencing token when the caller holds the lock now (one entry), nil when the key exists
(held by another owner or by this one, or a string that is not a lock); a WRONGTYPE error when the
key holds another type of value (asked only then: the free path stays EXISTS, INCR, SET).
The mark lives as long as the lock it was set under, at most: a lock that expires publishes nothing.
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('TYPE', KEYS[1]).ok ~= 'string' then
    return redis.error_reply('WRONGTYPE the lock key holds a value of another type')
  end
  if ARGV[3] ~= '' then
    local left = redis.call('PTTL', KEYS[1])
    redis.call('SET', KEYS[3], '1', 'PX', left > 0 and left or ARGV[2])
  end
  return nil
end
local fence = redis.call('INCR', KEYS[2])
-- `..` writes a number with 14 significant digits: exact below 1e14, formatted beyond
redis.call('SET', KEYS[1], (fence < 1e14 and fence or string.format('%.0f', fence)) .. ':1:' .. ARGV[1], 'PX', ARGV[2])
if ARGV[3] == 'a' then redis.call('SET', KEYS[3], '1', 'PX', ARGV[2]) end
return fence
