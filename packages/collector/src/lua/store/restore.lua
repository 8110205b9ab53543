--[[
store/restore: replaces a context with one restored from outside, keeping its version.

KEYS[1] state hash, KEYS[2] deltas list (see apply.lua)
ARGV[1]  now, ms
ARGV[2]  version
ARGV[3]  TTL (ms) of the hash, 0 for none
ARGV[4]  where to publish: 'P:' (PUBLISH) or 'S:' (SPUBLISH, on a cluster) then the channel; '' not to
ARGV[5..] the hash's fields and values, in pairs (#v, #st, … and '.'<field> -> '-1:<JSON>'); #in among
          them keeps that incarnation (a copy moved from another store)
Returns the context's incarnation (#in): the one given, else a new one. Deltas and seqs are dropped: a client behind gets a full sync, and the next
bus messages fold in as into a new context.
]]
redis.call('DEL', KEYS[1], KEYS[2])
for i = 5, #ARGV, 4000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 3999, #ARGV)))
end
local inc = redis.call('HGET', KEYS[1], '#in')
if not inc then
  inc = incarnation()
  redis.call('HSET', KEYS[1], '#in', inc)
end
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
if ARGV[4] ~= '' then
  local cmd = string.sub(ARGV[4], 1, 1) == 'S' and 'SPUBLISH' or 'PUBLISH'
  redis.call(cmd, string.sub(ARGV[4], 3), '{"reset":' .. ARGV[2] .. '}')
end
return inc
