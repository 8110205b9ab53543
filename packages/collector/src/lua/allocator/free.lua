--[[
allocator/free: ends holds of one owner and returns the resources to the free set (or to their
unhealthy period). A hold of another owner, or of another fence when one is given, is left alone.
Runs after lib.lua (KEYS[1..10]: the pool's keys, see there).

ARGV[1]  owner token
ARGV[2..] pairs: resource key, fence as the client got it ('' for any hold of the owner)
Returns one flag per pair: 1 when the owner held the resource until now, 0 otherwise (a hold of
the owner that had already expired is ended too, but counts 0: it was lost).
]]

local now = now_ms()
local meta = redis.call('HMGET', K_META, 'due', 'sick')
due = tonumber(meta[1]) or 0
-- quiet: no hold or resource has expired and no resource is unhealthy (see `due` and `sick` in
-- lib.lua): a hold of the owner is live, and its resource goes straight back to the free set
local quiet = now < due and not meta[2]
local owner = ARGV[1]
local out = {}
for i = 2, #ARGV, 2 do
  local key, want = ARGV[i], ARGV[i + 1]
  local v = redis.call('HGET', K_HELD, key)
  local mine = false
  if want ~= '' then
    -- the hold of one allocation: its value is exactly '<fence>:<owner>'
    mine = v == want .. ':' .. owner
  elseif v then
    local fence, who = string.match(v, '^(%d+):(.*)$')
    mine = fence ~= nil and who == owner
  end
  local ok = 0
  if mine then
    if quiet then
      ok = 1
    else
      local e = redis.call('ZSCORE', K_HEXP, key)
      if e and tonumber(e) > now then ok = 1 end
    end
    redis.call('HDEL', K_HELD, key)
    redis.call('ZREM', K_HEXP, key)
    if quiet then
      local prio = redis.call('HGET', K_RES, key)
      if prio then push_free(key, tonumber(prio) or 0) end
    else
      lib()
      H.settle(key, now, true)
    end
  end
  out[#out + 1] = ok
end
return out
