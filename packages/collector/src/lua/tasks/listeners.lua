--[[
tasks/listeners: which names have a live listener, on Redis' clock.

KEYS[1]  the listeners zset of one name   <prefix>tq:{<namespace>}:l:<name> (member: listener id, score: last seen, ms)
ARGV[1]  'beat' (ARGV[2] the listener's id), 'leave' (ARGV[2] the id) or 'count'
ARGV[3]  a listener not seen for this long (ms) is gone
Returns the number of live listeners (after a beat or a leave, too).
]]
local key, mode = KEYS[1], ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = tonumber(ARGV[3])
if mode == 'beat' then
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, gone * 2)
elseif mode == 'leave' then
  redis.call('ZREM', key, ARGV[2])
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - gone)
return redis.call('ZCARD', key)
