-- Store a profile at a reserved version unless a newer one is already there.
-- KEYS: user; ARGV: version, profile. Returns 1 when stored, 0 when superseded or gone.
local current = redis.call('HGET', KEYS[1], 'pv')
if not current or tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
compact_state(KEYS[1])
write_long(KEYS[1], 'p', ARGV[2])
redis.call('HSET', KEYS[1], 'pv', ARGV[1])
return 1
