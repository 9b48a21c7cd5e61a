-- The worker saved a user: bring the shared state up to what the database holds.
-- KEYS: user, index
-- ARGV: 1 profile, 2 profile version, 3 disabled in the database ('1'/'0'), 4 user state ttl,
--       5 session key prefix, 6 tokens key prefix, 7 now, 8 the row's newest version (identity or profile)
-- The database's profile is taken unless Redis holds a newer one (an edit still on its way);
-- only then is the state confirmed, so an edit that merged into the row (changed fields only)
-- is seen whole. A disabled flag Redis did not know (its data was lost) ends every session of
-- the user. A row no newer than the user's deletion changes nothing. Returns how many sessions ended.
local gone = redis.call('HGET', KEYS[1], 'gone')
if gone and tonumber(ARGV[8]) <= tonumber(gone) then
  return 0
end
compact_state(KEYS[1])
local state = redis.call('HMGET', KEYS[1], 'pv', 'rv', 'ok')
local created = redis.call('EXISTS', KEYS[1]) == 0
local version = tonumber(ARGV[2])
local taken = version >= tonumber(state[1] or '-1')
if taken then
  write_long(KEYS[1], 'p', ARGV[1])
  redis.call('HSET', KEYS[1], 'pv', ARGV[2])
end
if version > tonumber(state[2] or '0') then
  redis.call('HSET', KEYS[1], 'rv', ARGV[2])
end
local ended = 0
if state[3] ~= '1' and ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'off', 1, 'nvb', ARGV[7])
  redis.call('PERSIST', KEYS[1])
  local members = index_members(KEYS[1], KEYS[2], 0)
  for _, member in ipairs(members) do
    ended = ended + redis.call('DEL', ARGV[5] .. member)
    redis.call('DEL', ARGV[6] .. member)
  end
  index_remove(KEYS[1], KEYS[2], members)
end
if taken then
  redis.call('HSET', KEYS[1], 'ok', 1)
end
if created and ARGV[3] ~= '1' then
  redis.call('EXPIRE', KEYS[1], ARGV[4])
end
return ended
