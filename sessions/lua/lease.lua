-- A session's refresh lease, touched only by its owner: renew it (PEXPIRE) or release it (DEL).
-- KEYS: lease; ARGV: 1 owner, 2 'renew' or 'release', 3 milliseconds (renew)
-- Returns 1 when done, 0 when the lease is not (or no longer) this owner's: it lapsed, and maybe another
-- request holds it now, which a plain GET then DEL could delete in between.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == 'renew' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
else
  redis.call('DEL', KEYS[1])
end
return 1
