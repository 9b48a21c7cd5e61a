-- Set a session's authentication time (after a re-authentication), only while the session exists:
-- a session signed out meanwhile must not come back as a stray hash holding nothing but an auth time.
-- KEYS: session; ARGV: 1 auth time (Unix seconds), 2 the provider session (`sid`) it came with ('' keeps the old)
-- Returns 1 if it was set, 0 if the session is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'at', ARGV[1])
if ARGV[2] and ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'ps', ARGV[2])
end
return 1
