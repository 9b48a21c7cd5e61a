-- Delete a user's account from Redis: every session ends, the cached identity and profile go, and
-- a tombstone stays so that no late job can bring them back (persisted.lua, sign_in.lua).
-- KEYS: user, index; ARGV: 1 session key prefix, 2 tokens key prefix, 3 tombstone ttl,
--       4 'move' when the account moves to a new name (accounts/moves.py): refused unless it lists a linked identity,
--         and what it holds comes back with the version
-- Returns {deletion version, sessions ended}: the version is above every version the user's data had.
-- With 'move': {version, ended, identity, identity version, profile, profile version, link record, ...}, or {'last'}
-- (no linked identity would be left to sign in with) or {'gone'} (no state, deleted, or disabled), changing nothing.
local moved = {}
if ARGV[4] == 'move' then
  -- A disabled account stays where it is: its new name would not carry the disable.
  if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'gone') == 1
      or redis.call('HGET', KEYS[1], 'off') == '1' then
    return {'gone'}
  end
  if not has_links(KEYS[1]) then
    return {'last'}
  end
  local held = redis.call('HMGET', KEYS[1], 'i', 'iv', 'p', 'pv')
  moved = {read_long(KEYS[1], 'i', held[1]) or '', held[2] or '0', read_long(KEYS[1], 'p', held[3]) or '', held[4] or '0'}
  local fields = redis.call('HGETALL', KEYS[1])
  for n = 1, #fields, 2 do
    if string.sub(fields[n], 1, 2) == 'l:' then
      table.insert(moved, fields[n + 1])
    end
  end
end
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'iv', 'pv', 'rv', 'gone')
local version = now_ms
for _, seen in ipairs(state) do
  version = math.max(version, tonumber(seen or '0') + 1)
end
local ended = 0
for _, member in ipairs(index_members(KEYS[1], KEYS[2], 0)) do
  ended = ended + redis.call('DEL', ARGV[1] .. member)
  redis.call('DEL', ARGV[2] .. member)
end
redis.call('DEL', KEYS[2], KEYS[1])
redis.call('HSET', KEYS[1], 'gone', version)
redis.call('EXPIRE', KEYS[1], ARGV[3])
local reply = {tostring(version), ended}
for _, value in ipairs(moved) do
  table.insert(reply, value)
end
return reply
