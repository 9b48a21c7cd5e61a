-- Delete a user's account from Redis: every session ends, the cached identity and profile go, and
-- a tombstone stays so that no late job can bring them back (persisted.lua, sign_in.lua).
-- KEYS: user, index; ARGV: 1 session key prefix, 2 tokens key prefix, 3 tombstone ttl
-- Returns {deletion version, sessions ended}: the version is above every version the user's data had.
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'iv', 'pv', 'rv', 'gone')
local version = now_ms
for _, seen in ipairs(state) do
  version = math.max(version, tonumber(seen or '0') + 1)
end
local ended = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  ended = ended + redis.call('DEL', ARGV[1] .. member)
  redis.call('DEL', ARGV[2] .. member)
end
redis.call('DEL', KEYS[2], KEYS[1])
redis.call('HSET', KEYS[1], 'gone', version)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {tostring(version), ended}
