-- The index of a user's sessions: one field 'x:<member>' of the user's state per session, whose value is the
-- latest moment (whole seconds, rounded up) the session can still be alive. Kept in the state rather than in a key
-- of its own, it costs a user about 136 bytes less (docs/performance.md), and it cannot outlive the state: the state
-- lives at least USER_STATE_TTL after the last sign-in, which config.py keeps at or above SESSION_ABSOLUTE_TIMEOUT.
-- Before 2026-12-07 the index was a sorted set of its own (KEYS index, sessions/keys.py), and SESSION_LAYOUT=whole
-- (COMPACT false) still writes it there, for processes of that version during a rolling upgrade: both are always read
-- and emptied, so a session indexed by either version is found, revoked and counted.
-- scripts.py puts this file in front of every script that calls its functions.
local INDEX_FIELD = 'x:'

-- Every indexed member of the user's sessions that can still be alive at `now`; the expired ones leave both forms.
local function index_members(user_key, index_key, now)
  redis.call('ZREMRANGEBYSCORE', index_key, '-inf', now)
  local members = redis.call('ZRANGE', index_key, 0, -1)
  local listed = {}
  for _, member in ipairs(members) do
    listed[member] = true
  end
  local expired = {}
  local fields = redis.call('HGETALL', user_key)
  for n = 1, #fields, 2 do
    if string.sub(fields[n], 1, 2) == INDEX_FIELD then
      local member = string.sub(fields[n], 3)
      if tonumber(fields[n + 1]) <= now then
        table.insert(expired, fields[n])
      elseif not listed[member] then
        listed[member] = true
        table.insert(members, member)
      end
    end
  end
  if #expired > 0 then
    redis.call('HDEL', user_key, unpack(expired))
  end
  return members
end

-- Index `member` as alive until `latest` (or slide it there).
local function index_add(user_key, index_key, member, latest, now)
  if COMPACT then
    redis.call('HSET', user_key, INDEX_FIELD .. member, latest)
    return
  end
  redis.call('ZADD', index_key, latest, member)
  if redis.call('TTL', index_key) < latest - now then
    redis.call('EXPIRE', index_key, math.ceil(latest - now))
  end
end

-- Take `members` (a list) out of the index, in whichever form each was listed: two commands however many.
local function index_remove(user_key, index_key, members)
  if #members == 0 then
    return
  end
  local fields = {}
  for n, member in ipairs(members) do
    fields[n] = INDEX_FIELD .. member
  end
  redis.call('HDEL', user_key, unpack(fields))
  redis.call('ZREM', index_key, unpack(members))
end
