--[[
store/sync: what clients at one or more versions of one context need, decided and read atomically (the
store answers every sync() of a context asked for in the same turn of the event loop with one call,
whatever their versions).

KEYS[1] state hash, KEYS[2] deltas list (see apply.lua)
ARGV[1] now, ms
ARGV[2] deltaTtl (ms), 0 for none: a delta older than this is gone
ARGV[3] deltaThreshold: only the newest this many deltas count as kept (the list may hold a few
        more until its next trim)
ARGV[4] the version of the context the caller knows whole ('' : none), ARGV[5] its incarnation:
        when a client gets 'f' and the context is still at that version, the caller has its fields
        and gets only the rest of the hash
ARGV[6..] per client: its version ('' for a client that has nothing), then the incarnation (#in)
        its copy is of ('' : not given)
Returns nil for an unknown context, else {version, status, answers, first, records, hash, incarnation,
known}:
  answers  one letter per client, in the order given: 'n' no change, 'd' a delta (the records
           after its version), 'f' the whole context (it has nothing, is ahead of the store, its
           copy is of another incarnation, a delta it needs is gone: trimmed, past the threshold,
           or expired, or its records are over 64 KiB and weigh more than the whole context)
  first    the version of records[1] (0 when no client gets a delta)
  records  the delta records from the oldest a 'd' client needs to the newest
  hash     the whole hash as a flat field/value list when a client gets 'f', else false
  incarnation  the context's #in ('' : none)
  known    1 when hash holds only the context's own entries (#v, #st, #rk, #hd, #ba, #ua, #fa,
           #in) and not its fields: the fields are those the caller knows (ARGV[4], ARGV[5]); else 0
]]
local m = redis.call('HMGET', KEYS[1], '#v', '#st', '#dm', '#in')
local inc = m[4] or ''
local version = tonumber(m[1])
if not version or version == 0 then return false end
local now, ttl, thr = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local dm = tonumber(m[3])
-- The list holds versions dm .. version exactly, or it cannot be trusted for anyone.
local intact = dm ~= nil and redis.call('LLEN', KEYS[2]) == version - dm + 1

-- The clients' versions, in the order given (nil for a client that has nothing).
local cvs = {}
local answers, low = {}, nil
for i = 6, #ARGV, 2 do
  local cv = tonumber(ARGV[i])
  cvs[(i - 4) / 2] = cv
  local a = 'f'
  if ARGV[i + 1] ~= '' and ARGV[i + 1] ~= inc then
    a = 'f'
  elseif cv == version then
    a = 'n'
  elseif intact and cv and cv < version and version - cv <= thr and dm <= cv + 1 then
    a = 'd'
    if not low or cv < low then low = cv end
  end
  answers[#answers + 1] = a
end

local records, first = {}, 0
if low then
  records = redis.call('LRANGE', KEYS[2], low + 1 - dm, -1)
  first = low + 1
  if ttl > 0 then
    -- A client whose first record is past deltaTtl gets the whole context (records are oldest
    -- first, so only the older clients can be affected).
    local limit = now - ttl
    for c = 1, #answers do
      if answers[c] == 'd' then
        local rec = records[cvs[c] + 1 - low]
        local t = rec and tonumber(string.match(rec, '^{"v":%d+,"t":(%d+)'))
        if not t or t <= limit then answers[c] = 'f' end
      end
    end
  end
end

local hash = false
if low then
  -- A client whose records weigh more than the whole context gets the context: it is less to send
  -- and to read. Records up to 64 KiB are always sent as a delta.
  local suffix, total = {}, 0
  for i = #records, 1, -1 do
    total = total + #records[i]
    suffix[i] = total
  end
  local hashBytes = nil
  local newLow = nil
  for c = 1, #answers do
    if answers[c] == 'd' then
      local cv = cvs[c]
      local bytes = suffix[cv + 1 - low] or 0
      if bytes > 65536 then
        if not hashBytes then
          hash = redis.call('HGETALL', KEYS[1])
          hashBytes = 0
          for j = 1, #hash do hashBytes = hashBytes + #hash[j] end
        end
        if bytes > hashBytes then answers[c] = 'f' end
      end
      if answers[c] == 'd' and (not newLow or cv < newLow) then newLow = cv end
    end
  end
  if not newLow then
    records, first = {}, 0
  elseif newLow > low then
    local kept = {}
    for i = newLow + 1 - low, #records do kept[#kept + 1] = records[i] end
    records, first = kept, newLow + 1
  end
end
local anyFull = false
for i = 1, #answers do
  if answers[i] == 'f' then anyFull = true; break end
end
local known = 0
if not anyFull then
  hash = false
elseif not hash then
  if ARGV[4] ~= '' and tonumber(ARGV[4]) == version and ARGV[5] == inc then
    -- The caller knows the fields of this version: the rest is all it needs.
    local names = {'#v', '#st', '#rk', '#hd', '#ba', '#ua', '#fa', '#in'}
    local got = redis.call('HMGET', KEYS[1], unpack(names))
    hash = {}
    for j = 1, #names do
      if got[j] then hash[#hash + 1] = names[j]; hash[#hash + 1] = got[j] end
    end
    known = 1
  else
    hash = redis.call('HGETALL', KEYS[1])
  end
end
return {m[1], m[2] or false, table.concat(answers), first, records, hash, inc, known}
