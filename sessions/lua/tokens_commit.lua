-- Store refreshed tokens, fenced: only if no other refresh was stored since this one began.
-- KEYS: session, tokens, lease; ARGV: 1 generation read, 2 lease owner, 3 packed tokens (sessions/token_record.py)
-- Returns 1 when stored, 0 when another refresh won, -1 when the session has ended.
-- The tokens are "<generation>|<msgpack>", in pieces in the session's hash ('t', 't2', ...), or the tokens key
-- when too long for pieces; before 2026-12 always the tokens key: a string, or earlier still a hash.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local generation
local first = redis.call('HGET', KEYS[1], 't')
if first then
  generation = string.match(first, '^(%d+)|')
else
  local kind = redis.call('TYPE', KEYS[2]).ok
  if kind == 'string' then
    generation = string.match(redis.call('GET', KEYS[2]), '^(%d+)|')
  elseif kind == 'hash' then
    -- Stored before tokens became one string: replaced by the current form below.
    generation = redis.call('HGET', KEYS[2], 'g')
  end
end
if not generation then
  return -1
end
if generation ~= ARGV[1] then
  return 0
end
local value = (tonumber(generation) + 1) .. '|' .. ARGV[3]
if fits_pieces(value) then
  write_long(KEYS[1], 't', value)
  redis.call('DEL', KEYS[2])
else
  -- A string beside the session, expiring with it (read.lua slides both).
  local ttl = redis.call('PTTL', KEYS[1])
  drop_pieces(KEYS[1], 't', 1)
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[2], value)
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
if redis.call('GET', KEYS[3]) == ARGV[2] then
  redis.call('DEL', KEYS[3])
end
return 1
