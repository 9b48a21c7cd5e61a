-- Reserve the version of a profile edit: newer than every stored or reserved one, from Redis's clock.
-- KEYS: user; ARGV: 1 the profile version the edit's form showed ('' when the client did not say),
--       2 how long (ms) another edit's unfinished reservation keeps this one out.
-- Returns the version; false when the user's state is gone (signed out everywhere, or deleted: the
-- deletion's tombstone is no user to edit); 'changed' when the profile moved on since the form was shown,
-- or another edit of the version it showed is being saved right now (two devices, one instant).
-- Checked here, atomically with the reservation, so that of two saves from the same version one wins
-- and the other is told so, never both "saved" with one edit lost.
if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'gone') == 1 then
  return false
end
local state = redis.call('HMGET', KEYS[1], 'pv', 'rv', 'rt')
local stored, reserved = tonumber(state[1] or '0'), tonumber(state[2] or '0')
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if ARGV[1] ~= '' then
  if tonumber(ARGV[1]) ~= stored then
    return 'changed'
  end
  if reserved > stored and now_ms - tonumber(state[3] or '0') < tonumber(ARGV[2]) then
    return 'changed'
  end
end
local version = math.max(now_ms, stored + 1, reserved + 1)
redis.call('HSET', KEYS[1], 'rv', version, 'rt', now_ms)
return tostring(version)
