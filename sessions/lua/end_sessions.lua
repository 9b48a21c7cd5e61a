-- End some of one user's sessions: O(that user's sessions), never a scan.
-- KEYS: user, index
-- ARGV: 1 session key prefix, 2 tokens key prefix, 3 mode, 4 argument, 5 member to keep ('' for none), 6 now,
--       7 provider name: with provider_sid and before, only sessions signed in with that provider end
--       ('' for any; a session stored before sessions kept their provider's name counts as any provider's)
--       8 with provider_sid: the sid's compact stored form (sessions/record_fields.py; '' when it has none)
-- Modes: member (ARGV[4] = member), all, provider_sid (ARGV[4] = sid),
--        before (ARGV[4] = time: ends sessions started earlier, and sets "not valid before").
-- Returns how many sessions ended.
local mode, argument, keep = ARGV[3], ARGV[4], ARGV[5]
if mode == 'before' then
  -- "Not valid before", for the user's sessions of that provider only when one is named (read.lua checks both).
  local field = (ARGV[7] or '') == '' and 'nvb' or 'nvb:' .. ARGV[7]
  local current = tonumber(redis.call('HGET', KEYS[1], field) or '0')
  if tonumber(argument) > current and redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('HSET', KEYS[1], field, argument)
  end
end
local ended = 0
local unlisted = {}
for _, member in ipairs(index_members(KEYS[1], KEYS[2], tonumber(ARGV[6]))) do
  if member ~= keep then
    local matches = false
    if mode == 'all' then
      matches = true
    elseif mode == 'member' then
      matches = member == argument
    else
      local record = redis.call('HMGET', ARGV[1] .. member, 'ps', 'c', 'pn')
      local provider_sid, created, signed_in_with = record[1], record[2], record[3]
      local provider = ARGV[7] or ''
      local same_provider = provider == '' or not signed_in_with or signed_in_with == provider
      if not created then
        table.insert(unlisted, member)
      elseif mode == 'provider_sid' then
        -- The sid in either stored form (sessions/record_fields.py): ARGV[8] is its compact one, if it has one.
        local compact_sid = ARGV[8] or ''
        matches = (provider_sid == argument or (compact_sid ~= '' and provider_sid == compact_sid)) and same_provider
      elseif mode == 'before' then
        matches = tonumber(created) < tonumber(argument) and same_provider
      end
    end
    if matches then
      ended = ended + redis.call('DEL', ARGV[1] .. member)
      redis.call('DEL', ARGV[2] .. member)
      table.insert(unlisted, member)
    end
  end
end
index_remove(KEYS[1], KEYS[2], unlisted)
return ended
