-- How many identities a user's state lists as linked into the account (its 'l:<digest>' fields,
-- sessions/identity_links.py). Such an account's state is kept without expiry (link.lua).
-- scripts.py puts this file in front of every script that calls link_count or has_links.
local function link_count(key)
  local count = 0
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) == 'l:' then
      count = count + 1
    end
  end
  return count
end

local function has_links(key)
  return link_count(key) > 0
end
