-- The live sessions of one user, for the devices page.
-- KEYS: index; ARGV: session key prefix, now
-- Returns {member, handle, created, last seen, device, address, provider name, ...}.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local rows = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local record = redis.call('HMGET', ARGV[1] .. member, 'h', 'c', 'seen', 'dev', 'ip', 'pn')
  if record[2] then
    table.insert(rows, member)
    for i = 1, 6 do
      table.insert(rows, record[i] or '')
    end
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
return rows
