-- Store a profile at a reserved version unless a newer one is already there.
-- KEYS: user; ARGV: version, profile. Returns 1 when stored, 0 when superseded or gone.
-- A reserved version belongs to one edit only (profile_reserve.lua), so finding exactly this version
-- stored means the worker has already saved this edit and published it (persisted.lua) before the
-- request got here: the edit is kept, and the worker's copy (the whole row) stays.
local current = redis.call('HGET', KEYS[1], 'pv')
if not current or tonumber(current) > tonumber(ARGV[1]) then
  return 0
end
if tonumber(current) == tonumber(ARGV[1]) then
  return 1
end
compact_state(KEYS[1])
write_long(KEYS[1], 'p', ARGV[2])
redis.call('HSET', KEYS[1], 'pv', ARGV[1])
return 1
