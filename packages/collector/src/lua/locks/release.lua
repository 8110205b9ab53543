--[[
locks/release: gives back one re-entry of a lock, only for its owner; when that frees the lock and
someone waits for it, says so on the lock's channel.

KEYS[1]  lock           <prefix>lock:{<name>}          '<fence>:<re-entries>:<owner>'
KEYS[2]  waiting mark   <prefix>lock:{<name>}:waiting  set by the waiters of acquire() (acquire.lua)
ARGV[1]  owner
ARGV[2]  fencing token the caller holds, '' to accept any acquisition by this owner
ARGV[3]  where to say the lock is free: 'P:' (PUBLISH) or 'S:' (SPUBLISH, on a cluster) then the
         channel (<prefix>lock:{<name>}:free, in the lock's slot); the message is the fence given back
Returns 1 released (the lock is free), 2 one re-entry given back (still held), 0 held by another
owner or another acquisition (nothing changed), -1 not held at all.
]]
local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
local fence, n, owner = string.match(cur, '^(%d+):(%d+):(.*)$')
if owner ~= ARGV[1] or (ARGV[2] ~= '' and fence ~= ARGV[2]) then return 0 end
n = tonumber(n) - 1
if n <= 0 then
  -- Published only when marked (both keys deleted): a lock no one waits for costs nothing more.
  if redis.call('DEL', KEYS[1], KEYS[2]) == 2 then
    redis.call(string.sub(ARGV[3], 1, 1) == 'S' and 'SPUBLISH' or 'PUBLISH', string.sub(ARGV[3], 3), fence)
  end
  return 1
end
redis.call('SET', KEYS[1], fence .. ':' .. n .. ':' .. owner, 'KEEPTTL')
return 2
