--[[
write: a direct write (RedisContextStore.set() / update()): a write without a bus.

KEYS[1] state hash, KEYS[2] deltas list (see apply.lua)
ARGV[1]  now, ms
ARGV[2]  'set' (every field not given is removed) or 'patch' (only the given fields change)
ARGV[3]  TTL (ms) of an open context, 0 for none
ARGV[4]  TTL (ms) of a finished context, 0 for none
ARGV[5]  deltaTtl (ms), 0 for none
ARGV[6]  deltaThreshold
ARGV[7]  pub/sub channel, '' not to publish
ARGV[8]  c: number of compare-and-set checks that follow
ARGV[9 .. 8+2c]  '.'<field name>, expected JSON text ('' : expected absent), in pairs
ARGV[9+2c ..]    '.'<field name>, canonical JSON value ('' : remove the field), in pairs
Returns {version, changed}, or {-1, 0} when a check failed (the caller re-reads and retries).

Every field written (or removed by 'set') is stamped with the highest seq seen (#hs), so a late bus
message older than the write never undoes it and any newer message wins. Creating the context is a
change even without fields.
]]
local hkey, dkey = KEYS[1], KEYS[2]
local now = ARGV[1]
local nowms = tonumber(now)

local function int(x)
  if x < 1e14 and x > -1e14 then return tostring(x) end
  return string.format('%d', x)
end

local function jsonkey(k)
  if string.find(k, '^[%w_%-%.]*$') then return '"' .. k .. '"' end
  return cjson.encode(k)
end

local function call(cmd, key, list)
  if #list <= 4000 then return redis.call(cmd, key, unpack(list)) end
  local out = {}
  for i = 1, #list, 4000 do
    local part = redis.call(cmd, key, unpack(list, i, math.min(i + 3999, #list)))
    if type(part) == 'table' then for j = 1, #part do out[#out + 1] = part[j] end end
  end
  return out
end

-- The JSON of a stored '<seq>:<json>' value; nil for a tombstone or no value.
local function json(cur)
  if not cur then return nil end
  local v = string.sub(cur, string.find(cur, ':', 1, true) + 1)
  if v == '' then return nil end
  return v
end

local c = tonumber(ARGV[8])
local first = 9 + 2 * c
local q = {'#v', '#hs', '#st', '#dm', '#dx'}
for i = 9, first - 1, 2 do q[#q + 1] = ARGV[i] end
for i = first, #ARGV, 2 do q[#q + 1] = ARGV[i] end
local m = call('HMGET', hkey, q)
for j = 1, c do
  if (json(m[5 + j]) or '') ~= ARGV[8 + 2 * j] then return {-1, 0} end
end

local version = tonumber(m[1]) or 0
local stamp = int(tonumber(m[2]) or -1) .. ':'
local changes, nc = {}, 0
local hset = {}
local given = {}
for i = first, #ARGV, 2 do given[ARGV[i]] = true end

if ARGV[2] == 'set' then
  local all = redis.call('HGETALL', hkey)
  for i = 1, #all, 2 do
    local k = all[i]
    if string.byte(k, 1) == 46 and not given[k] then
      local old = json(all[i + 1])
      if old then
        hset[#hset + 1] = k; hset[#hset + 1] = stamp
        nc = nc + 1; changes[nc] = '{"k":' .. jsonkey(string.sub(k, 2)) .. ',"o":' .. old .. '}'
      end
    end
  end
end
local base = 5 + c
for j = 1, (#ARGV - first + 1) / 2 do
  local k = ARGV[first + 2 * j - 2]
  local new = ARGV[first + 2 * j - 1]
  local old = json(m[base + j])
  if new == '' then
    -- '' is no JSON: the field is removed (a tombstone keeps its stamp).
    if old then
      hset[#hset + 1] = k; hset[#hset + 1] = stamp
      nc = nc + 1; changes[nc] = '{"k":' .. jsonkey(string.sub(k, 2)) .. ',"o":' .. old .. '}'
    end
  else
  hset[#hset + 1] = k; hset[#hset + 1] = stamp .. new
  if old ~= new then
    nc = nc + 1
    if old then
      changes[nc] = '{"k":' .. jsonkey(string.sub(k, 2)) .. ',"o":' .. old .. ',"n":' .. new .. '}'
    else
      changes[nc] = '{"k":' .. jsonkey(string.sub(k, 2)) .. ',"n":' .. new .. '}'
    end
  end
  end
end

local changed = nc > 0 or version == 0
local st = m[3]
local finished = st == 'finished' or st == 'transient'
local ttl = tonumber(finished and ARGV[4] or ARGV[3])
hset[#hset + 1] = '#tw'; hset[#hset + 1] = now
if changed then
  version = version + 1
  hset[#hset + 1] = '#v'; hset[#hset + 1] = int(version)
  hset[#hset + 1] = '#ua'; hset[#hset + 1] = now
  local rec = '{"v":' .. int(version) .. ',"t":' .. now .. ',"c":[' .. table.concat(changes, ',') .. ']'
  if st then rec = rec .. ',"s":"' .. st .. '"' end
  rec = rec .. '}'
  local thr = tonumber(ARGV[6])
  local dm = tonumber(m[4])
  if thr == 0 then
    if dm then redis.call('DEL', dkey); hset[#hset + 1] = '#dm'; hset[#hset + 1] = '' end
  else
    local len = redis.call('RPUSH', dkey, rec)
    if len == 1 or not dm or dm + len - 1 ~= version then
      if len ~= 1 then redis.call('DEL', dkey); redis.call('RPUSH', dkey, rec); len = 1 end
      dm = version
      hset[#hset + 1] = '#dm'; hset[#hset + 1] = int(dm)
    end
    local slack = math.floor(thr / 8) + 1
    if len > thr + slack then
      redis.call('LTRIM', dkey, len - thr, -1)
      hset[#hset + 1] = '#dm'; hset[#hset + 1] = int(dm + len - thr)
    end
    local dttl = tonumber(ARGV[5])
    if ttl > 0 and (dttl == 0 or ttl < dttl) then dttl = ttl end
    local dx = tonumber(m[5])
    if dttl > 0 and (len == 1 or not dx or dx - nowms < dttl) then
      local life = math.floor(dttl * 1.25)
      redis.call('PEXPIRE', dkey, life)
      hset[#hset + 1] = '#dx'; hset[#hset + 1] = int(nowms + life)
    end
  end
  if ARGV[7] ~= '' then redis.call('PUBLISH', ARGV[7], rec) end
end
call('HSET', hkey, hset)
if ttl > 0 then redis.call('PEXPIRE', hkey, ttl) end
return {version, changed and 1 or 0}
