--[[
store/apply: folds wire messages into one or more contexts, each context's messages in the order given,
atomically: the whole of RedisContextStore.apply() (one message) and of applyMany() (the messages of
several contexts, grouped by context; the store puts up to `contextsPerCall` contexts in a call).
On a single Redis every key a call touches is in KEYS, and the contexts of one call may be in
different slots. On a cluster a call goes to one master: the contexts of one slot with their keys
in KEYS, or those of several slots of that master with no KEYS (see ARGV[7..]).

KEYS[1], KEYS[3], … (KEYS[2c-1]) the c-th context's state hash
            <prefix>ctx:{<id>}  '.'<field> -> '<seq>:<canonical JSON>'
            ('<seq>:' a deleted field's tombstone); and the context's own: #v version, #hs highest
            seq, #st status, #rk rkey, #hd headers JSON, #ba born_at, #fa finished_at, #ua updated
            (ms), #tw last write (ms), #dm version of the list's first delta, #dx list expiry (ms),
            #in incarnation (set when the hash is made: see lib.lua)
KEYS[2], KEYS[4], … (KEYS[2c]) its deltas list
            <prefix>ctx:{<id>}:d  delta records (JSON) of versions #dm .. #v, oldest first
ARGV[1]  now, ms (the store's clock)
ARGV[2]  TTL (ms) of an open context, 0 for none
ARGV[3]  TTL (ms) of a finished context, 0 for none
ARGV[4]  deltaTtl (ms), 0 for none
ARGV[5]  deltaThreshold: deltas kept (0: none)
ARGV[6]  the command that publishes each context's changes on its channel, <state hash
         key>':changes': 'PUBLISH', or 'SPUBLISH' (sharded, on a cluster); '' not to publish.
         A message there holds {"in":<incarnation>} then the delta records of one context in one
         call, one a line.
ARGV[7..] per context, in the order of KEYS: the number of its messages, then its messages one
         after another (with no KEYS: the contexts of several slots of one cluster master, sent to
         that master by the variant that declares allow-cross-slot-keys: ARGV[7] is the number of
         contexts c, ARGV[8 .. 7+c] their state hash keys (each deltas list is its key .. ':d'),
         then per context as above), each:
         seq ('' when the message has none: it then folds in arrival order, seq = #hs + 1),
         status ('' | 'born' | 'finished' | 'transient'),
         time_in (unix seconds as text; the caller puts its clock there when the message has none),
         '1' for action delete else '0',
         rkey (used when the next is '1'), '1' when the message came with a routing key,
         headers JSON ('' for none),
         n, then n pairs '.'<field name>, canonical JSON value ('' for deletes)
Returns {version1, changed1, version2, changed2, ...}: per message, in the order given, the version
after it and 1 when it bumped the version, else 0.

Rule: a field takes the value of the highest seq that set or deleted it (strictly higher than the
one it has, so a redelivery is a no-op). Values are compared and stored as text, never decoded, so
cjson never touches them ({} stays an object, numbers keep their digits). Every redis.call costs
more than the command it runs, so per context one HMGET reads and one HSET writes all of its state,
whatever the number of messages; its delta records go in one RPUSH and one PUBLISH (a line each: a
watcher still sees one event per version). The deltas list is trimmed in steps (sync.lua enforces
the threshold exactly) and its TTL is renewed only when a quarter of it has run down. A script call
has a fixed cost (start, argument passing, the client's side): several contexts share it. Turning a
number into text is slow in Redis's Lua, so a message's seq is kept as the caller's text.
]]
local now = ARGV[1]
local nowms = tonumber(now)
local ttlOpen, ttlDone = tonumber(ARGV[2]), tonumber(ARGV[3])
local deltaTtl = tonumber(ARGV[4])
local thr = tonumber(ARGV[5])
local pubcmd = ARGV[6]


-- '{"k":<field name as JSON>', once per field name of the call.
local kopen = {}
local function jsonkey(k)
  local o = kopen[k]
  if o then return o end
  local name = string.sub(k, 2)
  if string.find(name, '^[%w_%-%.]*$') then o = '{"k":"' .. name .. '"' else o = '{"k":' .. cjson.encode(name) end
  kopen[k] = o
  return o
end

local out = {}

-- Folds the `count` messages of one context starting at ARGV[first]; returns where the next
-- context's arguments start.
local function fold(hkey, dkey, first, count)
  -- Every field any message names, once, for one HMGET.
  local q = {'#v', '#hs', '#st', '#ba', '#rk', '#hd', '#dm', '#dx', '#in'}
  local slot = {}
  local i = first
  for _ = 1, count do
    local nf = tonumber(ARGV[i + 7])
    for j = i + 8, i + 7 + 2 * nf, 2 do
      local k = ARGV[j]
      if not slot[k] then q[#q + 1] = k; slot[k] = #q end
    end
    i = i + 8 + 2 * nf
  end
  local after = i
  local m = call('HMGET', hkey, q)

  local version = tonumber(m[1]) or 0
  local hs = tonumber(m[2]) or -1
  local cur = m[3] or nil
  local ba, rk, hd = m[4], m[5], m[6]
  local dm, dx = tonumber(m[7]), tonumber(m[8])
  local inc = m[9]
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

  local recs = {}
  -- HSET's arguments, built as they come: a field written again takes its new value in place.
  local hset, at = {}, {}
  local function put(k, v)
    local p = at[k]
    if p then hset[p] = v; return end
    local n = #hset
    hset[n + 1] = k; hset[n + 2] = v
    at[k] = n + 2
  end
  local anywrite = false
  local vtext

  i = first
  for _ = 1, count do
    local seqText = ARGV[i]
    local seq
    if seqText == '' then seq = hs + 1; seqText = int(seq) else seq = tonumber(seqText) end
    local st, ti, del = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3] == '1'
    local nf = tonumber(ARGV[i + 7])
    local wrote = false
    if seq > hs then hs = seq; put('#hs', seqText); wrote = true end
    local changes, nc = {}, 0
    local prefix = seqText .. ':'
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
      vtext = int(version)
      local rec = '{"v":' .. vtext .. ',"t":' .. now .. ',"c":[' .. table.concat(changes, ',') .. ']'
      if cur then rec = rec .. ',"s":"' .. cur .. '"' end
      recs[#recs + 1] = rec .. '}'
    end
    if changed or wrote then anywrite = true end
    out[#out + 1] = version
    out[#out + 1] = changed and 1 or 0
    i = i + 8 + 2 * nf
  end

  if not anywrite then return after end

  local finished = cur == 'finished' or cur == 'transient'
  local ttl = finished and ttlDone or ttlOpen
  put('#tw', now)
  if not inc then
    inc = incarnation()
    put('#in', inc)
  end

  local nr = #recs
  if nr > 0 then
    put('#v', vtext)
    put('#ua', now)
    push_deltas(dkey, recs, version, dm, dx, thr, ttl, deltaTtl, nowms, put)
    -- One PUBLISH per context: its records one a line (canonical JSON holds no raw newline).
    if pubcmd ~= '' then redis.call(pubcmd, hkey .. ':changes', '{"in":"' .. inc .. '"}\n' .. table.concat(recs, '\n')) end
  end

  call('HSET', hkey, hset)
  if ttl > 0 then redis.call('PEXPIRE', hkey, ttl) end
  return after
end

local at = 7
if #KEYS == 0 then
  -- Contexts of several slots of one cluster master (the script then declares
  -- allow-cross-slot-keys): ARGV[7] says how many, their state hash keys follow. Each is touched
  -- before anything is written: a key this master no longer serves (its slot moved) fails the
  -- call whole, so that the caller can send it again without applying anything twice.
  local c = tonumber(ARGV[7])
  for i = 1, c do redis.call('EXISTS', ARGV[7 + i]) end
  at = 8 + c
  for i = 1, c do
    local hkey = ARGV[7 + i]
    local count = tonumber(ARGV[at])
    at = fold(hkey, hkey .. ':d', at + 1, count)
  end
else
  for c = 1, #KEYS / 2 do
    local count = tonumber(ARGV[at])
    at = fold(KEYS[2 * c - 1], KEYS[2 * c], at + 1, count)
  end
end
return out
