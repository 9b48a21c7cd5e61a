-- An account's linked identities, in its state: add one, or remove one and end the sessions it signed in.
-- KEYS: the account's state, its index
-- ARGV: 1 mode ("add" or "remove"), 2 the identity's digest (sessions/keys.py), 3 its provider's name,
--       4 add: the link's record; remove: the session key prefix, 5 add: the provider name of the account's
--       own identity; remove: the tokens key prefix, 6 remove: seconds the state lives once it has no links
-- Fields: "l:<digest>" the link's record, "lp:<provider>" the digest of the account's identity at that provider
--         ("primary" for the identity that created the account): one identity per provider.
--         "np" set on an account with no identity of its own (it moved to a new name: accounts/moves.py): its
--         last link stays.
-- restore (the worker, after the store lost its data; or an account moving to a new name): as add, but an account
--       with no state at all gets its state back first from the database's row: ARGV 6 identity, 7 identity
--       version, 8 profile, 9 profile version, 10 '1' when the account has no identity of its own (ARGV 5 is then
--       ''), 11 a tombstone version this may replace ('': none; a move undone because it could not be queued).
-- add and restore return 'linked', 'already', 'provider_taken' or 'gone'; remove returns {'unlinked', 'absent' or
-- 'last', sessions ended}.
local mode, digest, provider = ARGV[1], ARGV[2], ARGV[3]
if mode == 'restore' and (ARGV[11] or '') ~= '' and redis.call('HGET', KEYS[1], 'gone') == ARGV[11] then
  redis.call('DEL', KEYS[1])
end
if mode == 'restore' and redis.call('EXISTS', KEYS[1]) == 0 then
  write_long(KEYS[1], 'i', ARGV[6])
  write_long(KEYS[1], 'p', ARGV[8])
  redis.call('HSET', KEYS[1], 'iv', ARGV[7], 'pv', ARGV[9], 'ok', 1)
  if ARGV[10] == '1' then
    redis.call('HSET', KEYS[1], 'np', 1)
  end
end
if mode == 'add' or mode == 'restore' then
  if redis.call('EXISTS', KEYS[1]) == 0 or redis.call('HEXISTS', KEYS[1], 'gone') == 1 then
    return 'gone'
  end
  if ARGV[5] ~= '' then
    redis.call('HSETNX', KEYS[1], 'lp:' .. ARGV[5], 'primary')
  end
  local holder = redis.call('HGET', KEYS[1], 'lp:' .. provider)
  if holder == digest then
    return 'already'
  end
  if holder then
    return 'provider_taken'
  end
  redis.call('HSET', KEYS[1], 'l:' .. digest, ARGV[4], 'lp:' .. provider, digest)
  -- A linked identity finds its account through this state: it must not expire with inactivity.
  redis.call('PERSIST', KEYS[1])
  return 'linked'
end

if redis.call('HEXISTS', KEYS[1], 'l:' .. digest) == 0 then
  return {'absent', 0}
end
-- An account with no identity of its own keeps its last link: someone must be able to sign in to it.
if redis.call('HEXISTS', KEYS[1], 'np') == 1 and link_count(KEYS[1]) < 2 then
  return {'last', 0}
end
redis.call('HDEL', KEYS[1], 'l:' .. digest, 'lp:' .. provider)
local ended = 0
local unlisted = {}
for _, member in ipairs(index_members(KEYS[1], KEYS[2], 0)) do
  if redis.call('HGET', ARGV[4] .. member, 'pn') == provider then
    ended = ended + redis.call('DEL', ARGV[4] .. member)
    redis.call('DEL', ARGV[5] .. member)
    table.insert(unlisted, member)
  end
end
index_remove(KEYS[1], KEYS[2], unlisted)
if not has_links(KEYS[1]) and redis.call('HGET', KEYS[1], 'off') ~= '1' then
  redis.call('EXPIRE', KEYS[1], ARGV[6])
end
return {'unlinked', ended}
