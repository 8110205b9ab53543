--[[
apply: folds wire messages of ONE context into it, in the order given, atomically: the whole of
RedisContextStore.apply() (one message) and of one context's group in applyMany().

KEYS[1]  state hash   <prefix>ctx:{<id>}    '.'<field> -> '<seq>:<canonical JSON>' ('<seq>:' a
                                           deleted field's tombstone); and the context's own:
                                           #v version, #hs highest seq, #st status, #rk rkey,
                                           #hd headers JSON, #ba born_at, #fa finished_at,
                                           #ua updated (ms), #tw last write (ms),
                                           #dm version of the list's first delta, #dx list expiry (ms)
KEYS[2]  deltas list  <prefix>ctx:{<id>}:d  delta records (JSON) of versions #dm .. #v, oldest first
ARGV[1]  now, ms (the store's clock)
ARGV[2]  TTL (ms) of an open context, 0 for none
ARGV[3]  TTL (ms) of a finished context, 0 for none
ARGV[4]  deltaTtl (ms), 0 for none
ARGV[5]  deltaThreshold: deltas kept (0: none)
ARGV[6]  pub/sub channel of the context, '' not to publish; a message there holds the delta
         records of one call, one a line
ARGV[7..] the messages, one after another, each:
         seq ('' when the message has none: it then folds in arrival order, seq = #hs + 1),
         status ('' | 'born' | 'finished' | 'transient'),
         time_in (unix seconds as text; the caller puts its clock there when the message has none),
         '1' for action delete else '0',
         rkey (used when the next is '1'), '1' when the message came with a routing key,
         headers JSON ('' for none),
         n, then n pairs '.'<field name>, canonical JSON value ('' for deletes)
Returns {version1, changed1, version2, changed2, ...}: per message, the version after it and 1
when it bumped the version, else 0.

Rule: a field takes the value of the highest seq that set or deleted it (strictly higher than the
one it has, so a redelivery is a no-op). Values are compared and stored as text, never decoded, so
cjson never touches them ({} stays an object, numbers keep their digits). Every redis.call costs
more than the command it runs, so one HMGET reads and one HSET writes all of the state, whatever
the number of messages; their delta records go in one RPUSH and one PUBLISH (a line each: a
watcher still sees one event per version). The deltas list is trimmed in steps (sync.lua enforces the
threshold exactly) and its TTL is renewed only when a quarter of it has run down.
]]
local hkey, dkey = KEYS[1], KEYS[2]
local now = ARGV[1]
local nowms = tonumber(now)
local thr = tonumber(ARGV[5])
local channel = ARGV[6]

local function int(x)
  if x < 1e14 and x > -1e14 then return tostring(x) end
  return string.format('%d', x)
end

-- '{"k":<field name as JSON>', once per field of the call.
local kopen = {}
local function jsonkey(k)
  local o = kopen[k]
  if o then return o end
  local name = string.sub(k, 2)
  if string.find(name, '^[%w_%-%.]*$') then o = '{"k":"' .. name .. '"' else o = '{"k":' .. cjson.encode(name) end
  kopen[k] = o
  return o
end

-- unpack() is limited by the Lua stack: long lists go in slices. Returns the replies joined when
-- they are lists (HMGET), else the last one (RPUSH: the length).
local function call(cmd, key, list)
  if #list <= 4000 then return redis.call(cmd, key, unpack(list)) end
  local out, last = {}, nil
  for i = 1, #list, 4000 do
    last = redis.call(cmd, key, unpack(list, i, math.min(i + 3999, #list)))
    if type(last) == 'table' then for j = 1, #last do out[#out + 1] = last[j] end end
  end
  if type(last) == 'table' then return out end
  return last
end

-- Every field any message names, once, for one HMGET.
local n = #ARGV
local q = {'#v', '#hs', '#st', '#ba', '#rk', '#hd', '#dm', '#dx'}
local slot = {}
local i = 7
while i <= n do
  local nf = tonumber(ARGV[i + 7])
  for j = i + 8, i + 7 + 2 * nf, 2 do
    local k = ARGV[j]
    if not slot[k] then q[#q + 1] = k; slot[k] = #q end
  end
  i = i + 8 + 2 * nf
end
local m = call('HMGET', hkey, q)

local version = tonumber(m[1]) or 0
local hs = tonumber(m[2]) or -1
local cur = m[3] or nil
local ba, rk, hd = m[4], m[5], m[6]
local dm, dx = tonumber(m[7]), tonumber(m[8])
-- Per field: seq (number) and value (text, nil when absent or deleted).
local fseq, fval = {}, {}
for k, at in pairs(slot) do
  local s = m[at]
  if s then
    local p = string.find(s, ':', 1, true)
    fseq[k] = tonumber(string.sub(s, 1, p - 1))
    local old = string.sub(s, p + 1)
    if old ~= '' then fval[k] = old end
  end
end

local out, recs = {}, {}
local dirty, hset = {}, {}
local function put(k, v)
  if dirty[k] == nil then hset[#hset + 1] = k end
  dirty[k] = v
end
local anywrite = false

i = 7
while i <= n do
  local seq = ARGV[i] == '' and hs + 1 or tonumber(ARGV[i])
  local st, ti, del = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3] == '1'
  local nf = tonumber(ARGV[i + 7])
  local wrote = false
  if seq > hs then hs = seq; put('#hs', int(seq)); wrote = true end
  local changes, nc = {}, 0
  local prefix = int(seq) .. ':'
  for j = i + 8, i + 7 + 2 * nf, 2 do
    local k = ARGV[j]
    local s = fseq[k]
    if not s or seq > s then
      local old = fval[k]
      fseq[k] = seq
      wrote = true
      if del then
        fval[k] = nil
        put(k, prefix)
        if old then
          nc = nc + 1; changes[nc] = jsonkey(k) .. ',"o":' .. old .. '}'
        end
      else
        local new = ARGV[j + 1]
        fval[k] = new
        put(k, prefix .. new)
        if old ~= new then
          nc = nc + 1
          if old then
            changes[nc] = jsonkey(k) .. ',"o":' .. old .. ',"n":' .. new .. '}'
          else
            changes[nc] = jsonkey(k) .. ',"n":' .. new .. '}'
          end
        end
      end
    end
  end

  -- Status: born starts, finished / transient end and stay (a late born never moves it back).
  local stChanged = false
  if st == 'born' then
    if not cur then cur = 'born'; stChanged = true end
    if not ba then ba = ti; put('#ba', ti); wrote = true end
  elseif (st == 'finished' or st == 'transient') and cur ~= 'finished' and cur ~= 'transient' then
    cur = st; stChanged = true
    put('#fa', ti)
    if st == 'transient' and not ba then ba = ti; put('#ba', ti) end
  end
  if stChanged then put('#st', cur) end
  if ARGV[i + 5] == '1' and not rk then rk = ARGV[i + 4]; put('#rk', rk); wrote = true end
  if ARGV[i + 6] ~= '' and not hd then hd = ARGV[i + 6]; put('#hd', hd); wrote = true end

  local changed = nc > 0 or stChanged
  if changed then
    version = version + 1
    local rec = '{"v":' .. int(version) .. ',"t":' .. now .. ',"c":[' .. table.concat(changes, ',') .. ']'
    if cur then rec = rec .. ',"s":"' .. cur .. '"' end
    recs[#recs + 1] = rec .. '}'
  end
  if changed or wrote then anywrite = true end
  out[#out + 1] = version
  out[#out + 1] = changed and 1 or 0
  i = i + 8 + 2 * nf
end

if not anywrite then return out end

local finished = cur == 'finished' or cur == 'transient'
local ttl = tonumber(finished and ARGV[3] or ARGV[2])
put('#tw', now)

local nr = #recs
if nr > 0 then
  put('#v', int(version))
  put('#ua', now)
  if thr == 0 then
    if dm then redis.call('DEL', dkey); put('#dm', '') end
  else
    local len, fresh
    if nr >= thr then
      -- The batch alone fills the list: what was there goes.
      redis.call('DEL', dkey)
      local keep = {}
      for r = nr - thr + 1, nr do keep[#keep + 1] = recs[r] end
      len = call('RPUSH', dkey, keep)
      dm = version - thr + 1
      put('#dm', int(dm))
      fresh = true
    else
      len = call('RPUSH', dkey, recs)
      if len == nr or not dm or dm + len - 1 ~= version then
        -- A new list, or one broken by another writer's settings: start it at this batch.
        if len ~= nr then redis.call('DEL', dkey); len = call('RPUSH', dkey, recs) end
        dm = version - nr + 1
        put('#dm', int(dm))
      end
      fresh = len == nr
      local slack = math.floor(thr / 8) + 1
      if len > thr + slack then
        redis.call('LTRIM', dkey, len - thr, -1)
        dm = dm + len - thr
        put('#dm', int(dm))
      end
    end
    local dttl = tonumber(ARGV[4])
    if ttl > 0 and (dttl == 0 or ttl < dttl) then dttl = ttl end
    if dttl > 0 and (fresh or not dx or dx - nowms < dttl) then
      local life = math.floor(dttl * 1.25)
      redis.call('PEXPIRE', dkey, life)
      put('#dx', int(nowms + life))
    end
  end
  -- One PUBLISH for the batch: its records one a line (canonical JSON holds no raw newline).
  if channel ~= '' then redis.call('PUBLISH', channel, table.concat(recs, '\n')) end
end

local flat = {}
for _, k in ipairs(hset) do flat[#flat + 1] = k; flat[#flat + 1] = dirty[k] end
call('HSET', hkey, flat)
if ttl > 0 then redis.call('PEXPIRE', hkey, ttl) end
return out
