--[[
write: direct writes (RedisContextStore.set() / update() / assign()): writes without a bus, one or more to one
context in one call, applied in the order given as if each were its own call (the store sends the
writes of one context that were asked for together in one call).

KEYS[1] state hash, KEYS[2] deltas list (see apply.lua)
ARGV[1]  now, ms
ARGV[2]  TTL (ms) of an open context, 0 for none
ARGV[3]  TTL (ms) of a finished context, 0 for none
ARGV[4]  deltaTtl (ms), 0 for none
ARGV[5]  deltaThreshold
ARGV[6]  pub/sub channel, '' not to publish; a message there holds the delta records of the call,
         one a line
ARGV[7..] the writes one after another, each:
         'set' (every field not given is removed) or 'patch' (only the given fields change),
         c: the number of compare-and-set checks, n: the number of fields,
         c pairs '.'<field name>, expected JSON text ('' : expected absent),
         n pairs '.'<field name>, canonical JSON value ('' : remove the field)
Returns {version1, changed1, version2, changed2, ...}: per write, the version after it and 1 when
it bumped the version; {-1, 0} for a write whose check failed (it changed nothing; the caller
re-reads and retries).

Every field written (or removed by 'set') is stamped with the highest seq seen (#hs), so a late bus
message older than the write never undoes it and any newer message wins. Creating the context is a
change even without fields. The state is read once (HMGET, or HGETALL when a write is a 'set') and
written once (HSET), the records go in one RPUSH and one PUBLISH, whatever the number of writes.
]]
local hkey, dkey = KEYS[1], KEYS[2]
local now = ARGV[1]
local nowms = tonumber(now)
local thr = tonumber(ARGV[5])
local channel = ARGV[6]


local function jsonkey(k)
  if string.find(k, '^[%w_%-%.]*$') then return '"' .. k .. '"' end
  return cjson.encode(k)
end

-- The JSON of a stored '<seq>:<json>' value; nil for a tombstone or no value.
local function json(cur)
  if not cur then return nil end
  local v = string.sub(cur, string.find(cur, ':', 1, true) + 1)
  if v == '' then return nil end
  return v
end

-- The writes, and whether any is a 'set' (it needs every field).
local writes = {}
local anyset = false
local i = 7
while i <= #ARGV do
  local c, n = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  writes[#writes + 1] = {ARGV[i], c, n, i + 3}
  if ARGV[i] == 'set' then anyset = true end
  i = i + 3 + 2 * (c + n)
end

-- The fields' JSON (nil: absent), in a known order: what 'set' removes goes in the hash's order.
local fval, order, known = {}, {}, {}
local meta
if anyset then
  local all = redis.call('HGETALL', hkey)
  meta = {}
  for j = 1, #all, 2 do
    local k = all[j]
    if string.byte(k, 1) == 46 then
      fval[k] = json(all[j + 1]); order[#order + 1] = k; known[k] = true
    else
      meta[k] = all[j + 1]
    end
  end
else
  local q = {'#v', '#hs', '#st', '#dm', '#dx'}
  for _, w in ipairs(writes) do
    for j = w[4], w[4] + 2 * (w[2] + w[3]) - 1, 2 do
      local k = ARGV[j]
      if not known[k] then known[k] = true; q[#q + 1] = k end
    end
  end
  local m = call('HMGET', hkey, q)
  meta = {['#v'] = m[1], ['#hs'] = m[2], ['#st'] = m[3], ['#dm'] = m[4], ['#dx'] = m[5]}
  for j = 6, #q do fval[q[j]] = json(m[j]) end
end

local version = tonumber(meta['#v']) or 0
local stamp = int(tonumber(meta['#hs']) or -1) .. ':'
local st = meta['#st']
local out, recs = {}, {}
-- HSET's arguments: a field written again takes its new value in place.
local hset, at = {}, {}
local function put(k, v)
  local p = at[k]
  if p then hset[p] = v; return end
  local n = #hset
  hset[n + 1] = k; hset[n + 2] = v
  at[k] = n + 2
end

local anyok = false
for _, w in ipairs(writes) do
  local mode, c, n, first = w[1], w[2], w[3], w[4]
  local ok = true
  for j = first, first + 2 * c - 1, 2 do
    if (fval[ARGV[j]] or '') ~= ARGV[j + 1] then ok = false; break end
  end
  if not ok then
    out[#out + 1] = -1; out[#out + 1] = 0
  else
    anyok = true
    local changes, nc = {}, 0
    local from = first + 2 * c
    local last = from + 2 * n - 1
    if mode == 'set' then
      local given = {}
      for j = from, last, 2 do given[ARGV[j]] = true end
      for _, k in ipairs(order) do
        local old = fval[k]
        if old and not given[k] then
          fval[k] = nil
          put(k, stamp)
          nc = nc + 1; changes[nc] = '{"k":' .. jsonkey(string.sub(k, 2)) .. ',"o":' .. old .. '}'
        end
      end
    end
    for j = from, last, 2 do
      local k, new = ARGV[j], ARGV[j + 1]
      local old = fval[k]
      if new == '' then
        -- '' is no JSON: the field is removed (a tombstone keeps its stamp).
        if old then
          fval[k] = nil
          put(k, stamp)
          nc = nc + 1; changes[nc] = '{"k":' .. jsonkey(string.sub(k, 2)) .. ',"o":' .. old .. '}'
        end
      else
      if anyset and not known[k] then known[k] = true; order[#order + 1] = k end
      fval[k] = new
      put(k, stamp .. new)
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
    if changed then
      version = version + 1
      local rec = '{"v":' .. int(version) .. ',"t":' .. now .. ',"c":[' .. table.concat(changes, ',') .. ']'
      if st then rec = rec .. ',"s":"' .. st .. '"' end
      recs[#recs + 1] = rec .. '}'
    end
    out[#out + 1] = version; out[#out + 1] = changed and 1 or 0
  end
end

if not anyok then return out end

local finished = st == 'finished' or st == 'transient'
local ttl = tonumber(finished and ARGV[3] or ARGV[2])
put('#tw', now)
local nr = #recs
if nr > 0 then
  put('#v', int(version))
  put('#ua', now)
  push_deltas(dkey, recs, version, tonumber(meta['#dm']), tonumber(meta['#dx']), thr, ttl, tonumber(ARGV[4]), nowms, put)
  if channel ~= '' then redis.call('PUBLISH', channel, table.concat(recs, '\n')) end
end
call('HSET', hkey, hset)
if ttl > 0 then redis.call('PEXPIRE', hkey, ttl) end
return out
