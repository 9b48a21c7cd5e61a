-- Store refreshed tokens, fenced: only if no other refresh was stored since this one began.
-- KEYS: tokens, lease; ARGV: 1 generation read, 2 lease owner, 3 packed tokens (sessions/token_record.py)
-- Returns 1 when stored, 0 when another refresh won, -1 when the session has ended.
local kind = redis.call('TYPE', KEYS[1]).ok
local generation
if kind == 'string' then
  generation = string.match(redis.call('GET', KEYS[1]), '^(%d+)|')
elseif kind == 'hash' then
  -- Stored before tokens became one string: replaced by the string form below.
  generation = redis.call('HGET', KEYS[1], 'g')
end
if not generation then
  return -1
end
if generation ~= ARGV[1] then
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[1], (tonumber(generation) + 1) .. '|' .. ARGV[3])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
return 1
