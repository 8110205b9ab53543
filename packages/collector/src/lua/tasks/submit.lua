--[[
tasks/submit: queues a task, or joins the one of that id already queued, running or finished.

KEYS[1]  the task hash     <prefix>tq:{<namespace>}:t:<id>
KEYS[2]  the ready list    <prefix>tq:{<namespace>}:q:<name>
KEYS[3]  the waiters set   <prefix>tq:{<namespace>}:w:<id> (reply channels to notify)
ARGV[1]  id   ARGV[2] name   ARGV[3] params (JSON)
ARGV[4]  lifetime (ms) of a task that is not finished: past it, no worker runs it
ARGV[5]  most attempts (a worker that dies mid-task costs one)
ARGV[6]  the caller's reply channel ('' for none)
ARGV[7]  the channel that wakes listeners (published to when the ready list was empty)
ARGV[8]  how long (ms) its outcome is kept once finished
Returns {state, payload}: {'queued', ''} for a new task; {'pending', ''} when joining one queued or
running; {'done', result JSON} or {'failed', error JSON} for one that already finished;
{'conflict', its name} when the id belongs to a task of another name.
The ready list does not outlive its tasks: it expires with the longest-lived of the tasks queued in
it (each push lengthens its TTL to the new task's lifetime when that is longer), and a push first
drops, from its head, up to 10 ids whose task is no longer queued (expired, claimed from another
copy, or of another name now), as a claim would.
]]
local tkey, qkey, wkey = KEYS[1], KEYS[2], KEYS[3]
local life = tonumber(ARGV[4])
local st = redis.call('HMGET', tkey, 'status', 'result', 'error', 'name')
if st[1] and st[4] ~= ARGV[2] then return {'conflict', st[4]} end
if st[1] == 'done' then return {'done', st[2]} end
if st[1] == 'failed' then return {'failed', st[3]} end
if st[1] then
  if ARGV[6] ~= '' then
    redis.call('SADD', wkey, ARGV[6])
    redis.call('PEXPIRE', wkey, redis.call('PTTL', tkey))
  end
  return {'pending', ''}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', tkey, 'name', ARGV[2], 'params', ARGV[3], 'status', 'queued', 'attempts', 0,
  'max', ARGV[5], 'token', 0, 'keep', ARGV[8], 'created', string.format('%d', now), 'expires', string.format('%d', now + life))
redis.call('PEXPIRE', tkey, life)
if ARGV[6] ~= '' then
  redis.call('SADD', wkey, ARGV[6])
  redis.call('PEXPIRE', wkey, life)
end
local tprefix = string.sub(tkey, 1, #tkey - #ARGV[1])
for _ = 1, 10 do
  local head = redis.call('LINDEX', qkey, 0)
  if not head then break end
  local f = redis.call('HMGET', tprefix .. head, 'status', 'name')
  if f[1] == 'queued' and f[2] == ARGV[2] then break end
  redis.call('LPOP', qkey)
end
-- Listeners are woken only when the list was empty: one waits only after its claim found every list
-- of its names empty, and a task pushed behind others is taken by the listeners already woken for
-- them (each claims until it is full or the list is empty) or by a busy one's next claim.
if redis.call('RPUSH', qkey, ARGV[1]) == 1 then redis.call('PUBLISH', ARGV[7], ARGV[2]) end
if redis.call('PTTL', qkey) < life then redis.call('PEXPIRE', qkey, life) end
return {'queued', ''}
