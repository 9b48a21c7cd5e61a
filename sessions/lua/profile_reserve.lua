-- Reserve the version of a profile edit: newer than every stored or reserved one, from Redis's clock.
-- KEYS: user; returns the version, or false when the user's state is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local state = redis.call('HMGET', KEYS[1], 'pv', 'rv')
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local version = math.max(now_ms, tonumber(state[1] or '0') + 1, tonumber(state[2] or '0') + 1)
redis.call('HSET', KEYS[1], 'rv', version)
return tostring(version)
