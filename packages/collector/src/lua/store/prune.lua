--[[
store/prune: the cleanup of one context (RedisContextStore.cleanup() runs it on every context it scans).

KEYS[1] state hash, KEYS[2] deltas list (see apply.lua)
ARGV[1] now, ms
ARGV[2] deltaTtl (ms), 0 for none
ARGV[3] deltaThreshold
ARGV[4] TTL (ms) of an open context, 0 when autoDelete is off
ARGV[5] TTL (ms) of a finished context, 0 when autoDelete is off
Returns {deleted, deltasDropped}: deleted 1 when the context was idle past its TTL and was removed
(key TTLs do this by themselves; this catches contexts written while autoDelete was off).
]]
local now = tonumber(ARGV[1])
local m = redis.call('HMGET', KEYS[1], '#tw', '#st', '#dm', '#v')
if not m[1] and not m[4] then return {0, 0} end
local finished = m[2] == 'finished' or m[2] == 'transient'
local ttl = tonumber(finished and ARGV[5] or ARGV[4])
if ttl > 0 and now - (tonumber(m[1]) or 0) >= ttl then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {1, 0}
end
local len = redis.call('LLEN', KEYS[2])
local thr = tonumber(ARGV[3])
local drop = 0
if len > thr then drop = len - thr end
local dttl = tonumber(ARGV[2])
if dttl > 0 then
  while drop < len do
    local t = tonumber(string.match(redis.call('LINDEX', KEYS[2], drop), '^{"v":%d+,"t":(%d+)'))
    if t and t <= now - dttl then drop = drop + 1 else break end
  end
end
if drop > 0 then
  if drop >= len then
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], '#dm', '')
  else
    redis.call('LTRIM', KEYS[2], drop, -1)
    redis.call('HSET', KEYS[1], '#dm', tostring((tonumber(m[3]) or 0) + drop))
  end
end
return {0, drop}
