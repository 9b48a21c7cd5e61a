-- Delete a key only while it still holds the value the caller wrote (never someone else's newer value).
-- KEYS: the key; ARGV: 1 the value. Returns 1 when deleted, else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
