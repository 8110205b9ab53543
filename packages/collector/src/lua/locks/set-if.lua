--[[
locks/set-if: a conditional numeric write: sets the key to the value when the key is missing or when
`value <op> current` holds.

KEYS[1]  the key        <prefix>num:{<key>}
ARGV[1]  op: gt | lt | ge | le | eq | ne
ARGV[2]  value (a number)
ARGV[3]  ttl in ms, 0 for none
Returns {written, current}: written 1 when the value was set, 0 otherwise; current is the value
the key holds afterwards (as text), or false if it holds something that is not a number (nothing
is written then).
]]
local cur = redis.call('GET', KEYS[1])
local v = tonumber(ARGV[2])
local write
if not cur then
  write = true
else
  local c = tonumber(cur)
  if c == nil then return {0, false} end
  local op = ARGV[1]
  if op == 'gt' then write = v > c
  elseif op == 'lt' then write = v < c
  elseif op == 'ge' then write = v >= c
  elseif op == 'le' then write = v <= c
  elseif op == 'eq' then write = v == c
  else write = v ~= c end
end
if write then
  local ttl = tonumber(ARGV[3])
  if ttl > 0 then redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl) else redis.call('SET', KEYS[1], ARGV[2]) end
  return {1, ARGV[2]}
end
return {0, cur}
