--[[
tasks/renew: the worker still has the task: renews its visibility, and records progress.

KEYS[1]  the task hash    KEYS[2] the running zset of its name    KEYS[3] the waiters set
ARGV[1]  id   ARGV[2] the claim's token   ARGV[3] visibility timeout (ms)
ARGV[4]  current ('' : no progress to record)   ARGV[5] total
Returns 1, or 0 when the task is no longer this claim's (taken over, finished or expired).
]]
local tkey, rkey, wkey = KEYS[1], KEYS[2], KEYS[3]
local f = redis.call('HMGET', tkey, 'status', 'token')
if f[1] ~= 'running' or f[2] ~= ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', rkey, now + tonumber(ARGV[3]), ARGV[1])
if ARGV[4] ~= '' then
  redis.call('HSET', tkey, 'current', ARGV[4], 'total', ARGV[5])
  local msg = '{"id":' .. cjson.encode(ARGV[1]) .. ',"type":"progress","current":' .. ARGV[4] .. ',"total":' .. ARGV[5] .. '}'
  for _, ch in ipairs(redis.call('SMEMBERS', wkey)) do redis.call('PUBLISH', ch, msg) end
end
return 1
