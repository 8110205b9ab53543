--[[
registry/put: writes one registry entry, keeping (or setting) the expiry of its keys.

KEYS[1]  the entry hash   <prefix>registry:{<namespace>}:e:<id>
KEYS[2]  the index zset   <prefix>registry:{<namespace>}:index (member id, score: last heartbeat, ms)
ARGV[1]  mode: 'register' (replace the entry), 'upsert' (heartbeat that creates a missing entry),
         'heartbeat', 'metrics', 'mark' (all three: only an existing entry)
ARGV[2]  the entry's id (the index member)
ARGV[3]  expireAfter (ms): the keys' lifetime, renewed by every heartbeat
ARGV[4]  the entry's description as JSON ('' to keep what is stored)
ARGV[5]  'mark' only: '' clears the mark; otherwise when it ends (Redis clock, ms; '-1': never)
ARGV[6 ..] metric name, value, in pairs (stored as fields 'm:<name>')
Returns {written, now}: written 1 when the entry was written, 0 when it does not exist (and the mode
does not create it); now is the Redis clock (ms) the write used.

The clock is Redis' own (TIME), so the ages of entries written from many hosts compare on one clock.
A write never drops a key's expiry: every mode that touches the hash renews or keeps it.
]]
local ekey, ikey = KEYS[1], KEYS[2]
local mode, id = ARGV[1], ARGV[2]
local life = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nows = string.format('%d', now)

local exists = redis.call('EXISTS', ekey) == 1
if not exists and mode ~= 'register' and mode ~= 'upsert' then return {0, now} end

local f = {}
if mode == 'register' or (mode == 'upsert' and not exists) then
  redis.call('DEL', ekey)
  f[#f + 1] = 'reg'; f[#f + 1] = nows
end
if ARGV[4] ~= '' then f[#f + 1] = 'e'; f[#f + 1] = ARGV[4] end
for i = 6, #ARGV, 2 do f[#f + 1] = 'm:' .. ARGV[i]; f[#f + 1] = ARGV[i + 1] end

local beat = mode == 'register' or mode == 'upsert' or mode == 'heartbeat'
if beat then f[#f + 1] = 'hb'; f[#f + 1] = nows end
if mode == 'mark' then
  if ARGV[5] == '' then redis.call('HDEL', ekey, 'down') else f[#f + 1] = 'down'; f[#f + 1] = ARGV[5] end
end
if #f > 0 then redis.call('HSET', ekey, unpack(f)) end

if beat then
  redis.call('PEXPIRE', ekey, life)
  redis.call('ZADD', ikey, now, id)
  -- The index lives as long as its longest-lived entry.
  if redis.call('PTTL', ikey) < life then redis.call('PEXPIRE', ikey, life) end
end
return {1, now}
