--[[
store/write: direct writes (RedisContextStore.set() / update() / assign()): writes without a bus, one or more to one
context in one call, applied in the order given as if each were its own call (the store sends the
writes of one context that were asked for together in one call).

KEYS[1] state hash, KEYS[2] deltas list (see apply.lua)
ARGV[1]  now, ms
ARGV[2]  TTL (ms) of an open context, 0 for none
ARGV[3]  TTL (ms) of a finished context, 0 for none
ARGV[4]  deltaTtl (ms), 0 for none
ARGV[5]  deltaThreshold
ARGV[6]  where to publish: 'P:' (PUBLISH) or 'S:' (SPUBLISH, sharded, on a cluster) then the
         channel; '' not to publish. A message there holds {"in":<incarnation>} then
         the delta records of the call, one a line
ARGV[7..] the writes one after another, each:
         'set' (every field not given is removed), 'patch' (only the given fields change) or
         'merge' (merging updates made by the caller on the values its checks expect: the fields'
         last values, and the changes of each version it makes, which the caller worked out), or
         'mergeorset' (a 'merge' of one version made from a context known whole: every field it
         had is given, '' for those it removes; when its check fails it is done as a 'set' of
         its fields instead, the changes worked out here),
         c: the number of compare-and-set checks, n: the number of fields,
         c pairs '.'<field name>, expected JSON text ('' : expected absent), or '#v', expected
         version, or '#in', expected incarnation ('' : none; a version and the incarnation
         together say that no field changed),
         n pairs '.'<field name>, canonical JSON value ('' : remove the field),
         for 'merge' and 'mergeorset' only: m, the number of versions, then m texts: the items of
         the version's record's change list ('' : that update changed nothing)
         'rmerge' and 'rmergeorset' are 'merge' and 'mergeorset' made ready by a caller that knows
         the stamp and status this call returns: its checks include '#st', the status (the
         records hold it), and '#hs', the stamp its values hold (not a check); the values are
         stored text ('<stamp><JSON>', '<stamp>' to remove the field) and the m texts whole
         records; Redis writes and publishes them as they are (the values stamped anew when the
         stamp has moved since: a bus message that changed nothing but came later)
Returns {version1, changed1, version2, changed2, ..., incarnation, stamp, status}: per write (per
version of a 'merge'), the version after it and 1 when it bumped the version; {-1, 0} for a write
whose check failed (it changed nothing; the caller re-reads and retries) and {-2, 0} for every
write after it (not tried: the caller sends them again after it, in their order); then the
context's incarnation (#in) after the call, the stamp of the fields written ('<#hs>:') and the
status ('' : none) (all three '' when no write was done).

Every field written (or removed by 'set') is stamped with the highest seq seen (#hs), so a late bus
message older than the write never undoes it and any newer message wins. Creating the context is a
change even without fields. The state is read once (HMGET, or HGETALL when a write is a 'set') and
written once (HSET), the records go in one RPUSH and one PUBLISH (large ones in a PUBLISH each),
whatever the number of writes.
]]
local hkey, dkey = KEYS[1], KEYS[2]
local now = ARGV[1]
local nowms = tonumber(now)
local thr = tonumber(ARGV[5])
local pubcmd = string.sub(ARGV[6], 1, 1) == 'S' and 'SPUBLISH' or 'PUBLISH'
local channel = string.sub(ARGV[6], 3)


-- Publishes the context's incarnation and the records on the channel, one a line (canonical JSON
-- holds no raw newline): in one message when they are small, else the incarnation alone and then
-- the records in one message, or one message each when they are large or only one (joining them
-- would copy every byte again, and Redis's Lua pays for each byte of a string it makes or is
-- given). A watcher reads them all alike (the incarnation holds for the records after it on the
-- channel).
local function publish_records(channel, recs, inc)
  local head = '{"in":"' .. inc .. '"}'
  local size = 0
  for r = 1, #recs do size = size + #recs[r] end
  if size <= 4096 then
    recs[0] = head
    redis.call(pubcmd, channel, table.concat(recs, '\n', 0))
    recs[0] = nil
    return
  end
  redis.call(pubcmd, channel, head)
  if size <= 65536 and #recs > 1 then
    redis.call(pubcmd, channel, table.concat(recs, '\n'))
  else
    for r = 1, #recs do redis.call(pubcmd, channel, recs[r]) end
  end
end

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
  local w = {ARGV[i], c, n, i + 3}
  writes[#writes + 1] = w
  if w[1] == 'set' then anyset = true end
  i = i + 3 + 2 * (c + n)
  if string.byte(w[1], 1) == 114 then
    -- Ready ('r…'): the stamp its values hold (from its '#hs' check) tells how to read them.
    w[1] = string.sub(w[1], 2)
    local hasst = false
    for j = w[4], w[4] + 2 * c - 1, 2 do
      if ARGV[j] == '#hs' then w[7] = #ARGV[j + 1] + 1; w[8] = ARGV[j + 1] end
      if ARGV[j] == '#st' then hasst = true end
    end
    if not w[7] or not hasst then return redis.error_reply('ERR a ready write needs #hs and #st') end
  end
  if w[1] == 'merge' or w[1] == 'mergeorset' then
    w[5] = tonumber(ARGV[i]); w[6] = i + 1
    i = i + 1 + w[5]
  end
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
  local q = {'#v', '#hs', '#st', '#dm', '#dx', '#in'}
  for _, w in ipairs(writes) do
    -- A 'merge' writes what it was given whatever is there: only its checks are read.
    local last = w[4] + 2 * (w[5] and w[2] or w[2] + w[3]) - 1
    for j = w[4], last, 2 do
      local k = ARGV[j]
      if not known[k] and string.byte(k, 1) == 46 then known[k] = true; q[#q + 1] = k end
    end
  end
  local m = call('HMGET', hkey, q)
  meta = {['#v'] = m[1], ['#hs'] = m[2], ['#st'] = m[3], ['#dm'] = m[4], ['#dx'] = m[5], ['#in'] = m[6]}
  for j = 7, #q do fval[q[j]] = json(m[j]) end
end

local version = tonumber(meta['#v']) or 0
local inc = meta['#in']
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

-- The fields written: each gets its final '<stamp><JSON>' once, at the end (every string Redis's
-- Lua makes costs per byte, and chained writes may set a large value many times), unless a ready
-- write gave it (ready[k]).
local written, wrote, ready = {}, {}, {}
local function setf(k, v, r)
  if wrote[k] == nil then written[#written + 1] = k end
  wrote[k] = v or false
  ready[k] = r
end
-- The JSON of a field as written so far (a ready write's text is read once another write needs it).
local stamped = {}
local function fjson(k)
  local v = fval[k]
  if stamped[k] then
    v = string.sub(v, stamped[k])
    if v == '' then v = nil end
    fval[k] = v; stamped[k] = nil
  end
  return v
end

-- A record from the items of its change list (the version and the status are known here).
local function record(items)
  if st then
    return '{"v":' .. int(version) .. ',"t":' .. now .. ',"c":[' .. items .. '],"s":"' .. st .. '"}'
  end
  return '{"v":' .. int(version) .. ',"t":' .. now .. ',"c":[' .. items .. ']}'
end

-- Makes fval and order hold every field, for a 'set' the call did not read the whole hash for:
-- what the hash holds under what this call has written so far.
local function loadall()
  if anyset then return end
  anyset = true
  local all = redis.call('HGETALL', hkey)
  for j = 1, #all, 2 do
    local k = all[j]
    if string.byte(k, 1) == 46 then
      if not known[k] and wrote[k] == nil then fval[k] = json(all[j + 1]) end
      known[k] = true
    end
  end
  for k in pairs(wrote) do known[k] = true end
  order = {}
  for k in pairs(known) do order[#order + 1] = k end
end

local anyok = false
local stopped = false
for _, w in ipairs(writes) do
  local mode, c, n, first = w[1], w[2], w[3], w[4]
  local ok = not stopped
  for j = first, ok and first + 2 * c - 1 or 0, 2 do
    local k, have = ARGV[j], nil
    if k == '#v' then
      if version > 0 then have = int(version) end
    elseif k == '#in' then
      have = inc
    elseif k == '#hs' then
      -- The stamp the values hold: not a check (they are stamped anew if it moved).
      have = ARGV[j + 1]
    elseif k == '#st' then
      have = st
    else
      have = fjson(k)
    end
    if (have or '') ~= ARGV[j + 1] then ok = false; break end
  end
  local strip = w[7]
  if not ok and mode == 'mergeorset' and not stopped then
    -- What the caller knew is out of date: its fields are written as a 'set' would.
    loadall()
    mode, ok = 'set', true
  elseif ok then
    strip = nil
  end
  if not ok then
    for _ = 1, w[5] or 1 do out[#out + 1] = stopped and -2 or -1; out[#out + 1] = 0 end
    stopped = true
  elseif mode == 'merge' or mode == 'mergeorset' then
    anyok = true
    local r = w[7]
    -- Values stamped with a stamp that has moved: written as JSON, stamped at the end.
    local restamp = r and w[8] ~= stamp and r
    if restamp then r = nil end
    for j = first + 2 * c, first + 2 * (c + n) - 1, 2 do
      local k, new = ARGV[j], ARGV[j + 1]
      if anyset and not known[k] then known[k] = true; order[#order + 1] = k end
      if restamp then new = string.sub(new, restamp) end
      if r then
        fval[k] = new; stamped[k] = r; setf(k, new, true)
      elseif new == '' then
        fval[k] = nil; stamped[k] = nil; setf(k, nil)
      else
        fval[k] = new; stamped[k] = nil; setf(k, new)
      end
    end
    for j = w[6], w[6] + w[5] - 1 do
      local items = ARGV[j]
      -- Creating the context is a change even without fields.
      local changed = items ~= '' or version == 0
      if changed then
        version = version + 1
        recs[#recs + 1] = w[7] and items or record(items)
      end
      out[#out + 1] = version; out[#out + 1] = changed and 1 or 0
    end
  else
    anyok = true
    -- The record as pieces joined once (parts[2] the version, known at the end).
    local parts, np, nc = {'{"v":', '', ',"t":', now, ',"c":['}, 5, 0
    local function change(k, old, new)
      if nc > 0 then np = np + 1; parts[np] = ',' end
      nc = nc + 1
      parts[np + 1] = '{"k":'; parts[np + 2] = jsonkey(string.sub(k, 2)); np = np + 2
      if old then parts[np + 1] = ',"o":'; parts[np + 2] = old; np = np + 2 end
      if new then parts[np + 1] = ',"n":'; parts[np + 2] = new; np = np + 2 end
      np = np + 1; parts[np] = '}'
    end
    local from = first + 2 * c
    local last = from + 2 * n - 1
    if mode == 'set' then
      local given = {}
      for j = from, last, 2 do given[ARGV[j]] = true end
      for _, k in ipairs(order) do
        local old = fjson(k)
        if old and not given[k] then
          fval[k] = nil
          setf(k, nil)
          change(k, old, nil)
        end
      end
    end
    for j = from, last, 2 do
      local k, new = ARGV[j], ARGV[j + 1]
      -- A ready write done as a 'set': its values without their stamp.
      if strip then new = string.sub(new, strip) end
      local old = fjson(k)
      if new == '' then
        -- '' is no JSON: the field is removed (a tombstone keeps its stamp).
        if old then
          fval[k] = nil
          setf(k, nil)
          change(k, old, nil)
        end
      else
        if anyset and not known[k] then known[k] = true; order[#order + 1] = k end
        fval[k] = new
        stamped[k] = nil
        setf(k, new)
        if old ~= new then change(k, old, new) end
      end
    end
    local changed = nc > 0 or version == 0
    if changed then
      version = version + 1
      parts[2] = int(version)
      np = np + 1; parts[np] = ']'
      if st then parts[np + 1] = ',"s":"'; parts[np + 2] = st; parts[np + 3] = '"'; np = np + 3 end
      np = np + 1; parts[np] = '}'
      recs[#recs + 1] = table.concat(parts, '', 1, np)
    end
    out[#out + 1] = version; out[#out + 1] = changed and 1 or 0
  end
end

if not anyok then out[#out + 1] = ''; out[#out + 1] = ''; out[#out + 1] = ''; return out end

for w = 1, #written do
  local k = written[w]
  if ready[k] then put(k, wrote[k]) else put(k, stamp .. (wrote[k] or '')) end
end
local finished = st == 'finished' or st == 'transient'
local ttl = tonumber(finished and ARGV[3] or ARGV[2])
put('#tw', now)
if not inc then inc = incarnation(); put('#in', inc) end
local nr = #recs
if nr > 0 then
  put('#v', int(version))
  put('#ua', now)
  push_deltas(dkey, recs, version, tonumber(meta['#dm']), tonumber(meta['#dx']), thr, ttl, tonumber(ARGV[4]), nowms, put)
  if channel ~= '' then publish_records(channel, recs, inc) end
end
call('HSET', hkey, hset)
if ttl > 0 then redis.call('PEXPIRE', hkey, ttl) end
out[#out + 1] = inc
out[#out + 1] = stamp
out[#out + 1] = st or ''
return out
