-- A provider session's (`sid`'s) lookup: the users it signed in, and when it was logged out.
-- KEYS: the lookup (sessions/keys.py)
-- ARGV: 1 mode, 2 user ('' with mode "out": every user), 3 time (the provider's clock), 4 seconds to keep it at least
-- Modes:
--   join: name the user (the sign-in's ID token was issued at ARGV[3]) unless the provider session was
--         logged out by a token issued no earlier. Returns 1 when named, 0 when it had already ended: the
--         caller ends the session it just started.
--   out:  record the logout (its token issued at ARGV[3]) for that user or every user, so a sign-in still
--         completing ends its own session on "join"; returns the users to sign out now.
if redis.call('TYPE', KEYS[1]).ok == 'string' then
  -- Written before the lookup became a hash of users: one user, converted in place with its expiry.
  local ttl, user = redis.call('TTL', KEYS[1]), redis.call('GET', KEYS[1])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], user, 1)
  if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
end
local mode, user, at = ARGV[1], ARGV[2], tonumber(ARGV[3])

local function keep_at_least(seconds)
  if redis.call('TTL', KEYS[1]) < seconds then
    redis.call('EXPIRE', KEYS[1], seconds)
  end
end

if mode == 'join' then
  for _, logged_out in ipairs(redis.call('HMGET', KEYS[1], '!out', '!out:' .. user)) do
    if logged_out and tonumber(logged_out) >= at then
      return 0
    end
  end
  redis.call('HSET', KEYS[1], user, 1)
  keep_at_least(tonumber(ARGV[4]))
  return 1
end

local field = user == '' and '!out' or '!out:' .. user
if at > tonumber(redis.call('HGET', KEYS[1], field) or '-1') then
  redis.call('HSET', KEYS[1], field, ARGV[3])
end
keep_at_least(tonumber(ARGV[4]))
if user ~= '' then
  return {user}
end
local users = {}
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(name, 1, 1) ~= '!' then
    table.insert(users, name)
  end
end
return users
