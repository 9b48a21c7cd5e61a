-- The live sessions of one user, for the devices page.
-- KEYS: user, index (lib/session_index.lua); ARGV: session key prefix, now
-- Returns {member, stored handle ('' when derived: sessions/record_fields.py), created, last seen ('' before the
-- first write), device, address, provider name, ...}.
local rows = {}
local unlisted = {}
for _, member in ipairs(index_members(KEYS[1], KEYS[2], tonumber(ARGV[2]))) do
  local record = redis.call('HMGET', ARGV[1] .. member, 'h', 'c', 'seen', 'dev', 'ip', 'pn')
  if record[2] then
    table.insert(rows, member)
    for i = 1, 6 do
      table.insert(rows, record[i] or '')
    end
  else
    table.insert(unlisted, member)
  end
end
index_remove(KEYS[1], KEYS[2], unlisted)
return rows
