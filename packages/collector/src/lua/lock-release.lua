--[[
lock-release: gives back one re-entry of a lock (or all of them), only for its owner.

KEYS[1]  lock hash      <prefix>lock:{<name>}
ARGV[1]  owner
ARGV[2]  fencing token the caller holds, '' to accept any acquisition by this owner
ARGV[3]  '1' to release every re-entry at once
Returns 1 released (the lock is free), 2 one re-entry given back (still held), 0 held by another
owner or another acquisition (nothing changed), -1 not held at all.
]]
local cur = redis.call('HMGET', KEYS[1], 'o', 'f')
if not cur[1] then return -1 end
if cur[1] ~= ARGV[1] or (ARGV[2] ~= '' and cur[2] ~= ARGV[2]) then return 0 end
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1])
  return 1
end
local n = redis.call('HINCRBY', KEYS[1], 'n', -1)
if n <= 0 then
  redis.call('DEL', KEYS[1])
  return 1
end
return 2
