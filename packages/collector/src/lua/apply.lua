--[[
apply: folds one wire message into a context, atomically: the whole of RedisContextStore.apply().

KEYS[1]  state hash   <prefix>ctx:{<id>}    '.'<field> -> '<seq>:<canonical JSON>' ('<seq>:' a
                                           deleted field's tombstone); and the context's own:
                                           #v version, #hs highest seq, #st status, #rk rkey,
                                           #hd headers JSON, #ba born_at, #fa finished_at,
                                           #ua updated (ms), #tw last write (ms),
                                           #dm version of the list's first delta, #dx list expiry (ms)
KEYS[2]  deltas list  <prefix>ctx:{<id>}:d  delta records (JSON) of versions #dm .. #v, oldest first
ARGV[1]  now, ms (the store's clock)
ARGV[2]  seq; '' when the message has none (it then folds in arrival order: seq = #hs + 1)
ARGV[3]  status: '' | 'born' | 'finished' | 'transient'
ARGV[4]  time_in, unix seconds as text (the caller puts its clock there when the message has none)
ARGV[5]  '1' for action delete
ARGV[6]  rkey, used when ARGV[7] is '1'
ARGV[7]  '1' when the message came with a routing key
ARGV[8]  headers JSON, '' for none
ARGV[9]  TTL (ms) of an open context, 0 for none
ARGV[10] TTL (ms) of a finished context, 0 for none
ARGV[11] deltaTtl (ms), 0 for none
ARGV[12] deltaThreshold: deltas kept (0: none)
ARGV[13] pub/sub channel of the context, '' not to publish
ARGV[14..] '.'<field name>, canonical JSON value ('' for deletes), in pairs
Returns {version, changed}: changed 1 when the version was bumped, else 0.

Rule: a field takes the value of the highest seq that set or deleted it (strictly higher than the
one it has, so a redelivery is a no-op). Values are compared and stored as text, never decoded, so
cjson never touches them ({} stays an object, numbers keep their digits). Every redis.call costs
more than the command it runs, so one HMGET reads and one HSET writes all of the state; the
deltas list is trimmed in steps (sync.lua enforces the threshold exactly) and its TTL is renewed
only when a quarter of it has run down.
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

-- unpack() is limited by the Lua stack: long lists go in slices.
local function call(cmd, key, list)
  if #list <= 4000 then return redis.call(cmd, key, unpack(list)) end
  local out = {}
  for i = 1, #list, 4000 do
    local part = redis.call(cmd, key, unpack(list, i, math.min(i + 3999, #list)))
    if type(part) == 'table' then for j = 1, #part do out[#out + 1] = part[j] end end
  end
  return out
end

local n = #ARGV
local q = {'#v', '#hs', '#st', '#ba', '#rk', '#hd', '#dm', '#dx'}
for i = 14, n, 2 do q[#q + 1] = ARGV[i] end
local m = call('HMGET', hkey, q)
local version = tonumber(m[1]) or 0
local hs = tonumber(m[2]) or -1
local seq
if ARGV[2] == '' then seq = hs + 1 else seq = tonumber(ARGV[2]) end

local hset = {}
local wrote = false
if seq > hs then
  hset[#hset + 1] = '#hs'; hset[#hset + 1] = int(seq)
  wrote = true
end

local changes, nc = {}, 0
local del = ARGV[5] == '1'
local prefix = int(seq) .. ':'
for j = 1, (n - 13) / 2 do
  local cur = m[8 + j]
  local s, old = nil, nil
  if cur then
    local p = string.find(cur, ':', 1, true)
    s = tonumber(string.sub(cur, 1, p - 1))
    old = string.sub(cur, p + 1)
    if old == '' then old = nil end
  end
  if not s or seq > s then
    local k = ARGV[12 + 2 * j]
    wrote = true
    if del then
      hset[#hset + 1] = k; hset[#hset + 1] = prefix
      if old then
        nc = nc + 1; changes[nc] = '{"k":' .. jsonkey(string.sub(k, 2)) .. ',"o":' .. old .. '}'
      end
    else
      local new = ARGV[13 + 2 * j]
      hset[#hset + 1] = k; hset[#hset + 1] = prefix .. new
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
end

-- Status: born starts, finished / transient end and stay (a late born never moves it back).
local st = ARGV[3]
local cur = m[3]
local newst = cur
local stChanged = false
if st == 'born' then
  if not cur then newst = 'born'; stChanged = true end
  if not m[4] then hset[#hset + 1] = '#ba'; hset[#hset + 1] = ARGV[4]; wrote = true end
elseif (st == 'finished' or st == 'transient') and cur ~= 'finished' and cur ~= 'transient' then
  newst = st; stChanged = true
  hset[#hset + 1] = '#fa'; hset[#hset + 1] = ARGV[4]
  if st == 'transient' and not m[4] then hset[#hset + 1] = '#ba'; hset[#hset + 1] = ARGV[4] end
end
if stChanged then hset[#hset + 1] = '#st'; hset[#hset + 1] = newst end
if ARGV[7] == '1' and not m[5] then hset[#hset + 1] = '#rk'; hset[#hset + 1] = ARGV[6]; wrote = true end
if ARGV[8] ~= '' and not m[6] then hset[#hset + 1] = '#hd'; hset[#hset + 1] = ARGV[8]; wrote = true end

local changed = nc > 0 or stChanged
if not changed and not wrote then return {version, 0} end

local finished = newst == 'finished' or newst == 'transient'
local ttl = tonumber(finished and ARGV[10] or ARGV[9])
hset[#hset + 1] = '#tw'; hset[#hset + 1] = now

if changed then
  version = version + 1
  hset[#hset + 1] = '#v'; hset[#hset + 1] = int(version)
  hset[#hset + 1] = '#ua'; hset[#hset + 1] = now
  local rec = '{"v":' .. int(version) .. ',"t":' .. now .. ',"c":[' .. table.concat(changes, ',') .. ']'
  if newst then rec = rec .. ',"s":"' .. newst .. '"' end
  rec = rec .. '}'
  local thr = tonumber(ARGV[12])
  local dm = tonumber(m[7])
  if thr == 0 then
    if dm then redis.call('DEL', dkey); hset[#hset + 1] = '#dm'; hset[#hset + 1] = '' end
  else
    local len = redis.call('RPUSH', dkey, rec)
    if len == 1 or not dm or dm + len - 1 ~= version then
      -- A new list, or one broken by another writer's settings: start it at this version.
      if len ~= 1 then redis.call('DEL', dkey); redis.call('RPUSH', dkey, rec); len = 1 end
      dm = version
      hset[#hset + 1] = '#dm'; hset[#hset + 1] = int(dm)
    end
    local slack = math.floor(thr / 8) + 1
    if len > thr + slack then
      redis.call('LTRIM', dkey, len - thr, -1)
      hset[#hset + 1] = '#dm'; hset[#hset + 1] = int(dm + len - thr)
    end
    local dttl = tonumber(ARGV[11])
    if ttl > 0 and (dttl == 0 or ttl < dttl) then dttl = ttl end
    local dx = tonumber(m[8])
    if dttl > 0 and (len == 1 or not dx or dx - nowms < dttl) then
      local life = math.floor(dttl * 1.25)
      redis.call('PEXPIRE', dkey, life)
      hset[#hset + 1] = '#dx'; hset[#hset + 1] = int(nowms + life)
    end
  end
  if ARGV[13] ~= '' then redis.call('PUBLISH', ARGV[13], rec) end
end

call('HSET', hkey, hset)
if ttl > 0 then redis.call('PEXPIRE', hkey, ttl) end
return {version, changed and 1 or 0}
