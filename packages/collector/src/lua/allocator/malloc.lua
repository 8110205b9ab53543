--[[
allocator/malloc: allocates a resource: the bound one of a name when it is free, else the head of the
free set (highest priority, then freed longest ago), or the one key asked for (mallocKey).
Exclusive pools hold it for the owner until freed or until the hold expires; shared pools move it
to the tail of its level (round-robin) and hold nothing. O(log n), plus the due work it does first
(at most ARGV[4] of each kind, see reclaim in lib.lua).
Runs after lib.lua (KEYS[1..10]: the pool's keys, see there).

ARGV[1]  'x' exclusive, 's' shared
ARGV[2]  owner token
ARGV[3]  hold timeout (ms)
ARGV[4]  reclaim limit
ARGV[5]  binding name, '' or absent for none
ARGV[6]  binding timeout (ms), when ARGV[5] names one
ARGV[7]  lowest acceptable priority (integer), '' or absent for any
ARGV[8]  the resource key to allocate, '' or absent for any
The optional arguments come last, so that the common call (any resource, no binding) sends 4.
Returns {key, fence, hold expiry (ms)} (fence and expiry 0 in shared pools), or nil when nothing
suitable is free.
]]

local now = now_ms()
local exclusive = ARGV[1] == 'x'
local owner = ARGV[2]
local name = ARGV[5] or ''
local minp = tonumber(ARGV[7])
local want = ARGV[8] or ''
due = tonumber(redis.call('HGET', K_META, 'due')) or 0

local key = nil
if now < due and name == '' and not minp and want == '' then
  -- the common case, with the fewest commands: nothing in the pool has expired (see `due` in
  -- lib.lua), any resource will do, and the head of the free set is taken off it at once
  local pick = redis.call('ZPOPMIN', K_FREE)
  if #pick == 0 then return false end
  key = pick[1]
else
  lib()
  -- quiet: nothing in the pool has expired, no expiry checks needed
  local quiet = H.catch_up(now, tonumber(ARGV[4]))

  -- Drops `k` if it has expired (a resource of the pool found before gc removed it).
  local function gone(k)
    if quiet or not H.expired_resource(k, now) then return false end
    H.drop(k)
    return true
  end

  local function usable(k)
    local s = redis.call('ZSCORE', K_FREE, k)
    if not s then return false end
    if minp and tonumber(s) >= -(minp - 1) * LEVEL then return false end
    return not gone(k)
  end

  if want ~= '' then
    if usable(want) then key = want end
  else
    if name ~= '' then
      local bound_key = redis.call('HGET', K_BIND, name)
      if bound_key then
        local e = redis.call('ZSCORE', K_BEXP, name)
        if e and tonumber(e) > now then
          if usable(bound_key) then key = bound_key end
        else
          H.unbind(name)
        end
      end
    end
    -- free scores below this bound belong to priorities >= minp
    local bound = minp and string.format('(%.0f', -(minp - 1) * LEVEL) or '+inf'
    while not key do
      local pick = redis.call('ZRANGEBYSCORE', K_FREE, '-inf', bound, 'LIMIT', 0, 1)
      if #pick == 0 then break end
      if not gone(pick[1]) then key = pick[1] end
    end
  end
  if not key then return false end
  redis.call('ZREM', K_FREE, key)
end

local fence, expires = 0, 0
if exclusive then
  fence = redis.call('HINCRBY', K_META, 'fence', 1)
  expires = now + tonumber(ARGV[3])
  -- `..` writes a number with 14 significant digits: exact below 1e14, formatted beyond
  redis.call('HSET', K_HELD, key, (fence < 1e14 and fence or string.format('%.0f', fence)) .. ':' .. owner)
  redis.call('ZADD', K_HEXP, expires, key)
  -- keep `due` a lower bound of the hold expiries
  if expires < due then redis.call('HSET', K_META, 'due', string.format('%.0f', expires)) end
else
  push_free(key, tonumber(redis.call('HGET', K_RES, key)) or 0)
end
if name ~= '' then H.bind(name, key, now + tonumber(ARGV[6])) end
return {key, fence, expires}
