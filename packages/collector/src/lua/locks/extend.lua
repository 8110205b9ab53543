--[[
locks/extend: sets a new ttl on a lock, only for the owner and the acquisition that holds it (a
re-entered lock's ttl is only ever lengthened).

KEYS[1]  lock           <prefix>lock:{<name>}          '<fence>:<re-entries>:<owner>'
KEYS[2]  waiting mark   <prefix>lock:{<name>}:waiting  when set (acquire.lua), lives as long as the lock
ARGV[1]  owner
ARGV[2]  fencing token the caller holds, '' to accept any acquisition by this owner
ARGV[3]  ttl, ms
Returns 1 extended, 0 held by another owner or acquisition, -1 not held at all (expired).
]]
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
local fence, n, owner = string.match(cur, '^(%d+):(%d+):(.*)$')
if owner ~= ARGV[1] or (ARGV[2] ~= '' and fence ~= ARGV[2]) then return 0 end
-- Re-entered, it is never shortened: another entry of the owner counts on the ttl it set.
if tonumber(n) > 1 and redis.call('PTTL', KEYS[1]) > tonumber(ARGV[3]) then return 1 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
-- The waiters' mark (if any) must not run out before the lock it waits for is released.
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
