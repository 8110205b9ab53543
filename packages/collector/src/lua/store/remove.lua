--[[
store/remove: deletes a context with its deltas (RedisContextStore.delete()).

KEYS[1] state hash, KEYS[2] deltas list (see apply.lua)
ARGV[1] where to publish: 'P:' (PUBLISH) or 'S:' (SPUBLISH, on a cluster) then the channel; '' not to
Returns 1 when a visible context (version >= 1) was deleted, else 0.
]]
local v = tonumber(redis.call('HGET', KEYS[1], '#v')) or 0
redis.call('DEL', KEYS[1], KEYS[2])
if v == 0 then return 0 end
if ARGV[1] ~= '' then
  redis.call(string.sub(ARGV[1], 1, 1) == 'S' and 'SPUBLISH' or 'PUBLISH', string.sub(ARGV[1], 3), '{"deleted":true}')
end
return 1
