--[[
sync: what a client at a version needs, decided and read atomically.

KEYS[1] state hash, KEYS[2] deltas list (see apply.lua)
ARGV[1] the client's version, '' when it has nothing
ARGV[2] now, ms
ARGV[3] deltaTtl (ms), 0 for none: a delta older than this is gone
ARGV[4] deltaThreshold: only the newest this many deltas count as kept (the list may hold a few
        more until its next trim)
Returns nil for an unknown context, else one of
  {'n', version}                                 no change
  {'d', version, status, {record, record, ...}}  the records after the client's version
  {'f', {field, value, field, value, ...}}       the whole hash: the client has nothing, is ahead
      of the store, or a delta it needs is gone (trimmed, past the threshold, or expired)
]]
local m = redis.call('HMGET', KEYS[1], '#v', '#st', '#dm')
local version = tonumber(m[1])
if not version or version == 0 then return false end
local cv = tonumber(ARGV[1])
if cv == version then return {'n', m[1]} end
local thr = tonumber(ARGV[4])
if cv and cv < version and version - cv <= thr then
  local dm = tonumber(m[3])
  if dm and dm <= cv + 1 and redis.call('LLEN', KEYS[2]) == version - dm + 1 then
    local idx = cv + 1 - dm
    local first = redis.call('LINDEX', KEYS[2], idx)
    local fresh = first ~= false
    local ttl = tonumber(ARGV[3])
    if fresh and ttl > 0 then
      local t = tonumber(string.match(first, '^{"v":%d+,"t":(%d+)'))
      fresh = t ~= nil and t > tonumber(ARGV[2]) - ttl
    end
    if fresh then return {'d', m[1], m[2], redis.call('LRANGE', KEYS[2], idx, -1)} end
  end
end
return {'f', redis.call('HGETALL', KEYS[1])}
