-- Whether a user's state lists any identity linked into the account (its 'l:<digest>' fields,
-- sessions/identity_links.py). Such an account's state is kept without expiry (link.lua).
-- scripts.py puts this file in front of every script that calls has_links.
local function has_links(key)
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) == 'l:' then
      return true
    end
  end
  return false
end
