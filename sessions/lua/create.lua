-- Store a new anonymous session (a sign-in in progress).
-- KEYS: session; ARGV: data, created, ttl
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
-- The app data in pieces (lib/long_fields.lua): the hash stays a listpack.
write_long(KEYS[1], 'd', ARGV[1])
redis.call('HSET', KEYS[1], 'v', 1, 'c', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
