-- Store refreshed tokens, fenced: only if no other refresh was stored since this one began.
-- KEYS: tokens, lease; ARGV: 1 generation read, 2 lease owner, 3 access, 4 refresh, 5 expires at, 6 id token
-- Returns 1 when stored, 0 when another refresh won, -1 when the session has ended.
local generation = redis.call('HGET', KEYS[1], 'g')
if not generation then
  return -1
end
if generation ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'a', ARGV[3], 'r', ARGV[4], 'e', ARGV[5], 'id', ARGV[6], 'g', tonumber(generation) + 1)
if redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('DEL', KEYS[2])
end
return 1
