-- Compare-and-set a session's app data against the version the request read.
-- KEYS: session; ARGV: expected version, data
-- Returns {1, new version} when written, {-1} when the session is gone (never revive it),
-- {0, current data, current version} when another request wrote first.
local version = redis.call('HGET', KEYS[1], 'v')
if not version then
  return {-1}
end
if version ~= ARGV[1] then
  return {0, read_long(KEYS[1], 'd', redis.call('HGET', KEYS[1], 'd')), version}
end
local next_version = tonumber(version) + 1
-- In pieces (lib/long_fields.lua): a CSRF token alone makes the data longer than 64 bytes, and one longer
-- value would turn the whole session hash into a hashtable, about three times the bytes.
write_long(KEYS[1], 'd', ARGV[2])
redis.call('HSET', KEYS[1], 'v', next_version)
return {1, tostring(next_version)}
