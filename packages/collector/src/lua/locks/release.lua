--[[
locks/release: gives back one re-entry of a lock, only for its owner.

KEYS[1]  lock           <prefix>lock:{<name>}   '<fence>:<re-entries>:<owner>'
ARGV[1]  owner
ARGV[2]  fencing token the caller holds, '' to accept any acquisition by this owner
Returns 1 released (the lock is free), 2 one re-entry given back (still held), 0 held by another
owner or another acquisition (nothing changed), -1 not held at all.
]]
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
local fence, n, owner = string.match(cur, '^(%d+):(%d+):(.*)$')
if owner ~= ARGV[1] or (ARGV[2] ~= '' and fence ~= ARGV[2]) then return 0 end
n = tonumber(n) - 1
if n <= 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], fence .. ':' .. n .. ':' .. owner, 'KEEPTTL')
return 2
