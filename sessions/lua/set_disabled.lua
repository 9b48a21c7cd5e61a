-- Disable or enable a user. Disabling ends every session at once and keeps the flag forever.
-- KEYS: user, index; ARGV: 1 '1' to disable / '0' to enable, 2 user state ttl, 3 session key prefix,
--       4 tokens key prefix, 5 now
-- Returns {status version, sessions ended}.
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local version = math.max(now_ms, tonumber(redis.call('HGET', KEYS[1], 'sv') or '0') + 1)
local ended = 0
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'off', 1, 'sv', version, 'nvb', ARGV[5])
  redis.call('PERSIST', KEYS[1])
  local members = index_members(KEYS[1], KEYS[2], 0)
  for _, member in ipairs(members) do
    ended = ended + redis.call('DEL', ARGV[3] .. member)
    redis.call('DEL', ARGV[4] .. member)
  end
  index_remove(KEYS[1], KEYS[2], members)
else
  redis.call('HDEL', KEYS[1], 'off')
  redis.call('HSET', KEYS[1], 'sv', version)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return {tostring(version), ended}
