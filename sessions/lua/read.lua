-- Read one session, and for a signed-in one its user's state, in one round trip.
-- KEYS: session [, user, index, tokens]
-- ARGV: now, idle timeout, absolute timeout, seconds between last-seen writes, client address, member
-- Returns false when there is no valid session (an invalid signed-in one is deleted), else
-- {data, version, created} for an anonymous session and
-- {data, version, created, handle, auth time, identity, profile, profile version, confirmed, provider name}
-- when signed in.
local record = redis.call('HMGET', KEYS[1], 'd', 'v', 'c', 'seen', 'h', 'at', 'pn')
if not record[3] then
  return false
end
-- The app data may be in pieces (lib/long_fields.lua): one more command only when it is over 64 bytes.
record[1] = read_long(KEYS[1], 'd', record[1])
local now = tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
local absolute_end = tonumber(record[3]) + tonumber(ARGV[3])
local remaining = absolute_end - now
if #KEYS == 1 then
  if remaining <= 0 then
    redis.call('DEL', KEYS[1])
    return false
  end
  redis.call('EXPIRE', KEYS[1], math.ceil(math.min(idle, remaining)))
  return {record[1], record[2], record[3]}
end

local user = redis.call('HMGET', KEYS[2], 'i', 'p', 'pv', 'ok', 'off', 'nvb', 'nvb:' .. (record[7] or ''))
-- Identity and profile may be in pieces (lib/long_fields.lua).
user[1] = read_long(KEYS[2], 'i', user[1])
user[2] = read_long(KEYS[2], 'p', user[2])
-- Valid only while the user's state exists, the user is enabled and the session started after their
-- "not valid before" time (and its provider's): a lost index entry can never keep a revoked one alive.
local not_before = math.max(tonumber(user[6] or '0'), tonumber(user[7] or '0'))
local every = tonumber(ARGV[4])
-- Idle since its last-seen write for the whole timeout plus one interval: over, even if Redis has not expired the
-- record yet (its expiry and its index score are counted from the same write, a moment after `seen`).
local idle_over = now >= tonumber(record[4] or record[3]) + idle + every
if remaining <= 0 or idle_over or not user[1] or user[5] == '1' or tonumber(record[3]) < not_before then
  redis.call('DEL', KEYS[1], KEYS[4])
  index_remove(KEYS[2], KEYS[3], {ARGV[6]})
  return false
end
-- Most pages write nothing: the idle expiry slides only when the last-seen time is written, at most
-- every `every` seconds, and then to `idle + every`, so a session ends between `idle` and `idle + every`
-- after its last request (never early). A page that writes costs Redis the write, its replication and
-- its append-only log entry; one in `every` seconds of a user's pages does.
-- A session signed in with the compact layout has no last-seen time until its first write: the sign-in is it.
if now - tonumber(record[4] or record[3]) >= every then
  local ttl = math.ceil(math.min(idle + every, remaining))
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[4], ttl)
  redis.call('HSET', KEYS[1], 'seen', math.floor(now), 'ip', ARGV[5])
  -- Indexed as alive until the latest moment it can be, so trimming the index never drops a live one (rounded up to
  -- a whole second, as sign_in.lua does).
  index_add(KEYS[2], KEYS[3], ARGV[6], math.ceil(math.min(now + idle + every, absolute_end)), now)
end
return {record[1], record[2], record[3], record[5], record[6], user[1], user[2], user[3], user[4], record[7]}
