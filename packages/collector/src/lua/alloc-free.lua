--[[
alloc-free: ends holds of one owner and returns the resources to the free set (or to their
unhealthy period). A hold of another owner, or of another fence when one is given, is left alone.
Runs after alloc-lib.lua (KEYS[1..10]: the pool's keys, see there).

ARGV[1]  owner token
ARGV[2..] pairs: resource key, fence ('' for any hold of the owner)
Returns one flag per pair: 1 when the owner held the resource until now, 0 otherwise (a hold of
the owner that had already expired is ended too, but counts 0: it was lost).
]]

local now = now_ms()
local owner = ARGV[1]
local out = {}
for i = 2, #ARGV, 2 do
  local key, want = ARGV[i], ARGV[i + 1]
  local fence, who = holder(key)
  local ok = 0
  if fence and who == owner and (want == '' or tonumber(want) == fence) then
    local e = redis.call('ZSCORE', K_HEXP, key)
    if e and tonumber(e) > now then ok = 1 end
    end_hold(key, now)
  end
  out[#out + 1] = ok
end
return out
