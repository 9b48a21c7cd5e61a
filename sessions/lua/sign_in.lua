-- Start a signed-in session: update the user's state, store the session and its tokens, index it.
-- The tokens go in the session's hash ('t', 't2', ...: lib/long_fields.lua), or the tokens key when too long.
-- KEYS: session, user, index, tokens
-- ARGV: 1 now, 2 idle, 3 absolute, 4 user state ttl, 5 max sessions per user, 6 member,
--       7 data, 8 handle (stored by SESSION_LAYOUT=whole only), 9 provider sid (sessions/record_fields.py),
--       10 device, 11 address, 12 auth time,
--       13 identity, 14 first profile, 15 packed tokens (sessions/token_record.py),
--       16 session key prefix, 17 tokens key prefix, 18 seconds between last-seen writes,
--       19 the provider's name (signed in with), 20 the link field (sessions/keys.py) of an identity linked
--       into this account ('' for the account's own identity; 13 is then '': the account keeps its identity)
-- Returns {'disabled'} for a disabled user, {'unlinked'} when the link is gone (unlinked, or the account
-- deleted), else {'ok', profile, profile version, confirmed, identity version}.
local user = redis.call('HMGET', KEYS[2], 'off', 'iv', 'p', 'gone')
local link = ARGV[20] or ''
if link ~= '' and redis.call('HEXISTS', KEYS[2], link) == 0 then
  return {'unlinked'}
end
if user[1] == '1' then
  return {'disabled'}
end
-- The state's expiry before this sign-in, read before anything is written: -2 none yet (or the tombstone of a
-- deleted account, replaced below), -1 kept on purpose (an account with linked identities: link.lua), else the
-- seconds left. Read after the writes below, a new state's -1 looked like "kept on purpose" and it never expired.
local user_ttl = user[4] and -2 or redis.call('TTL', KEYS[2])
if user_ttl == -1 then
  if not has_links(KEYS[2]) then
    user_ttl = -2  -- a state an earlier version left without expiry by that mistake
  end
end
-- A state written whole by an earlier version is rewritten in pieces (lib/long_fields.lua), compact again.
compact_state(KEYS[2])
local now = tonumber(ARGV[1])
local idle = tonumber(ARGV[2])
local absolute = tonumber(ARGV[3])

-- Versions come from Redis's clock and only go up: they never depend on web hosts' clocks agreeing.
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local identity_version = math.max(now_ms, tonumber(user[2] or user[4] or '0') + 1)
local first_profile_version = 0
if user[4] then
  -- The account was deleted (delete_user.lua): this sign-in starts a new one, whose first
  -- profile outranks anything a late job still holds for the old one.
  redis.call('DEL', KEYS[2])
  user[3] = false
  first_profile_version = identity_version
end
if ARGV[13] ~= '' then
  write_long(KEYS[2], 'i', ARGV[13])
  redis.call('HSET', KEYS[2], 'iv', identity_version)
else
  identity_version = tonumber(user[2] or '0')
end
if not user[3] then
  write_long(KEYS[2], 'p', ARGV[14])
  redis.call('HSET', KEYS[2], 'pv', first_profile_version, 'ok', 0)
end
-- The user's state outlives each of their sessions (a disabled user's never expires, and a disabled user does
-- not get this far).
if user_ttl ~= -1 and user_ttl < tonumber(ARGV[4]) then
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end

-- As read.lua slides it: the idle expiry moves only with the last-seen time, by `idle + every`.
local ttl = math.ceil(math.min(idle + tonumber(ARGV[18]), absolute))
-- The compact layout leaves out what a reader can do without: empty app data (read as empty), the last-seen
-- time (read as the sign-in time until a page writes one) and the handle (derived from the member:
-- sessions/record_fields.py). SESSION_LAYOUT=whole stores them for the previous version.
local EMPTY_DATA = '\128'  -- msgpack's empty map: the app data of nearly every sign-in
if not COMPACT or ARGV[7] ~= EMPTY_DATA then
  write_long(KEYS[1], 'd', ARGV[7])
end
redis.call('HSET', KEYS[1], 'v', 1, 'c', ARGV[1], 'at', ARGV[12], 'dev', ARGV[10], 'ip', ARGV[11])
if not COMPACT then
  redis.call('HSET', KEYS[1], 'h', ARGV[8], 'seen', math.floor(now))
end
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[1], 'ps', ARGV[9])
end
if ARGV[19] and ARGV[19] ~= '' then
  redis.call('HSET', KEYS[1], 'pn', ARGV[19])
end
-- The tokens in pieces in the session's own hash (no key of their own: about 120 bytes less, and they expire with
-- it); the page script never reads those fields. Too long for pieces (a JWT access token beside an ID token),
-- they stay a string beside the session, which costs less than a hash that is no longer a listpack.
local tokens = '1|' .. ARGV[15]
if fits_pieces(tokens) then
  write_long(KEYS[1], 't', tokens)
else
  redis.call('SET', KEYS[4], tokens, 'EX', ttl)
end
redis.call('EXPIRE', KEYS[1], ttl)

-- Index it (lib/session_index.lua); expired members leave as soon as anyone walks the index. The latest moment it can
-- be alive is rounded up to a whole second: still never before the session can end, and stored as a small integer.
local latest = math.ceil(math.min(now + idle + tonumber(ARGV[18]), now + absolute))
local others = {}
for _, member in ipairs(index_members(KEYS[2], KEYS[3], now)) do
  if member ~= ARGV[6] then
    table.insert(others, member)
  end
end
index_add(KEYS[2], KEYS[3], ARGV[6], latest, now)
local over = #others + 1 - tonumber(ARGV[5])
if over > 0 then
  -- Too many sessions: the oldest sign-ins end.
  for i, member in ipairs(others) do
    others[i] = {member, tonumber(redis.call('HGET', ARGV[16] .. member, 'c') or '0')}
  end
  table.sort(others, function(a, b) return a[2] < b[2] end)
  local ended = {}
  for i = 1, over do
    ended[i] = others[i][1]
    redis.call('DEL', ARGV[16] .. ended[i], ARGV[17] .. ended[i])
  end
  index_remove(KEYS[2], KEYS[3], ended)
end
local state = redis.call('HMGET', KEYS[2], 'p', 'pv', 'ok')
return {'ok', read_long(KEYS[2], 'p', state[1]), state[2], state[3], tostring(identity_version)}
