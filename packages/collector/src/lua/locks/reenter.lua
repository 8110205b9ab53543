--[[
locks/reenter: takes a lock for an owner, atomically, or takes it again when the owner holds it
already (rlock(): counts the re-entries and refreshes the ttl, never shortening it).

KEYS[1]  lock           <prefix>lock:{<name>}          string '<fence>:<re-entries>:<owner>', with the ttl
KEYS[2]  fence counter  <prefix>lock:{<name>}:fence    strictly increasing per name, never expires
KEYS[3]  waiting mark   <prefix>lock:{<name>}:waiting  set while someone waits: release.lua then publishes
ARGV[1]  owner
ARGV[2]  ttl, ms
ARGV[3]  mark the lock as waited for: '' never (rlock()), 'f' when another owner holds it (a
         waiter of acquire()), 'a' also when the caller takes it (others wait behind the caller)
Returns {fence, re-entries} when the caller holds the lock now, nil when another owner holds it
(or the key holds something else).
]]
local cur = redis.call('GET', KEYS[1])
if not cur then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], (fence < 1e14 and fence or string.format('%.0f', fence)) .. ':1:' .. ARGV[1], 'PX', ARGV[2])
  if ARGV[3] == 'a' then redis.call('SET', KEYS[3], '1', 'PX', ARGV[2]) end
  return {fence, 1}
end
local fence, n, owner = string.match(cur, '^(%d+):(%d+):(.*)$')
if owner ~= ARGV[1] then
  if ARGV[3] ~= '' then
    local left = redis.call('PTTL', KEYS[1])
    redis.call('SET', KEYS[3], '1', 'PX', left > 0 and left or ARGV[2])
  end
  return nil
end
n = tonumber(n) + 1
-- A re-entry never shortens the lock's life: an outer holder counts on the ttl it set.
local ttl = tonumber(ARGV[2])
local left = redis.call('PTTL', KEYS[1])
if left > ttl then ttl = left end
redis.call('SET', KEYS[1], fence .. ':' .. n .. ':' .. owner, 'PX', ttl)
-- The waiters' mark lives as long as the lock: set, or (when set) carried along.
if ARGV[3] == 'a' then redis.call('SET', KEYS[3], '1', 'PX', ttl) else redis.call('PEXPIRE', KEYS[3], ttl) end
return {tonumber(fence), n}
