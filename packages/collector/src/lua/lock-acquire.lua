--[[
lock-acquire: takes a lock for an owner, atomically; with reentry, the same owner may take it again.

KEYS[1]  lock hash      <prefix>lock:{<name>}         o owner, n re-entries, f fencing token
KEYS[2]  fence counter  <prefix>lock:{<name>}:fence   strictly increasing per name, never expires
ARGV[1]  owner
ARGV[2]  ttl, ms
ARGV[3]  '1' for a reentrant acquisition (rlock), '0' for lock
Returns {taken, fence, entries}: taken 1 when the caller holds the lock now (its fence and its
re-entry count), 0 when another owner holds it (fence and entries of that holder), or when the
same owner asks again without reentry.
]]
local cur = redis.call('HMGET', KEYS[1], 'o', 'f', 'n')
if not cur[1] then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[1], 'o', ARGV[1], 'f', fence, 'n', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, fence, 1}
end
if cur[1] == ARGV[1] and ARGV[3] == '1' then
  local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(cur[2]), n}
end
return {0, tonumber(cur[2]), tonumber(cur[3])}
