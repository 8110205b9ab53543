--[[
store/lib: what apply.lua, write.lua and restore.lua share (each is this file followed by its own).
]]

-- A new incarnation (#in) for a context whose hash is made anew: a check of the version alone
-- cannot tell a context from an earlier one of the same id (deleted, expired or restored, its
-- versions may come back to the same number). Redis's clock, to the microsecond: no two script
-- calls run within the same one.
local function incarnation()
  local t = redis.call('TIME')
  return t[1] .. '.' .. t[2]
end

-- An integer as text, without the exponent tostring() gives large numbers.
local function int(x)
  if x < 1e14 and x > -1e14 then return tostring(x) end
  return string.format('%d', x)
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

-- Appends the delta records `recs` (of versions version - #recs + 1 .. version) to the list dkey,
-- keeping about thr of them (trimmed in steps: sync.lua enforces the threshold exactly) and the
-- state's #dm (first version kept) and #dx (list expiry, renewed once a quarter of it has run down)
-- true through put(field, value). dm, dx: the state's current #dm and #dx (numbers or nil); ttl:
-- the context's TTL (ms, 0 none); deltaTtl (ms, 0 none).
local function push_deltas(dkey, recs, version, dm, dx, thr, ttl, deltaTtl, nowms, put)
  local nr = #recs
  if thr == 0 then
    if dm then redis.call('DEL', dkey); put('#dm', '') end
    return
  end
  local len, fresh
  if nr >= thr then
    -- The records alone fill the list: what was there goes.
    redis.call('DEL', dkey)
    local keep = {}
    for r = nr - thr + 1, nr do keep[#keep + 1] = recs[r] end
    len = call('RPUSH', dkey, keep)
    put('#dm', int(version - thr + 1))
    fresh = true
  else
    len = call('RPUSH', dkey, recs)
    if len == nr or not dm or dm + len - 1 ~= version then
      -- A new list, or one broken by another writer's settings: start it at these records.
      if len ~= nr then redis.call('DEL', dkey); len = call('RPUSH', dkey, recs) end
      dm = version - nr + 1
      put('#dm', int(dm))
    end
    fresh = len == nr
    local slack = math.floor(thr / 8) + 1
    if len > thr + slack then
      redis.call('LTRIM', dkey, len - thr, -1)
      put('#dm', int(dm + len - thr))
    end
  end
  local dttl = deltaTtl
  if ttl > 0 and (dttl == 0 or ttl < dttl) then dttl = ttl end
  if dttl > 0 and (fresh or not dx or dx - nowms < dttl) then
    local life = math.floor(dttl * 1.25)
    redis.call('PEXPIRE', dkey, life)
    put('#dx', int(nowms + life))
  end
end
