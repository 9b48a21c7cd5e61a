-- End some of one user's sessions: O(that user's sessions), never a scan.
-- KEYS: user, index
-- ARGV: 1 session key prefix, 2 tokens key prefix, 3 mode, 4 argument, 5 member to keep ('' for none), 6 now
-- Modes: member (ARGV[4] = member), handle (ARGV[4] = handle), all, provider_sid (ARGV[4] = sid),
--        before (ARGV[4] = time: ends sessions started earlier, and sets "not valid before").
-- Returns how many sessions ended.
local mode, argument, keep = ARGV[3], ARGV[4], ARGV[5]
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[6])
if mode == 'before' then
  local current = tonumber(redis.call('HGET', KEYS[1], 'nvb') or '0')
  if tonumber(argument) > current and redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('HSET', KEYS[1], 'nvb', argument)
  end
end
local ended = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if member ~= keep then
    local matches = false
    if mode == 'all' then
      matches = true
    elseif mode == 'member' then
      matches = member == argument
    else
      local record = redis.call('HMGET', ARGV[1] .. member, 'h', 'ps', 'c')
      if not record[3] then
        redis.call('ZREM', KEYS[2], member)
      elseif mode == 'handle' then
        matches = record[1] == argument
      elseif mode == 'provider_sid' then
        matches = record[2] == argument
      elseif mode == 'before' then
        matches = tonumber(record[3]) < tonumber(argument)
      end
    end
    if matches then
      ended = ended + redis.call('DEL', ARGV[1] .. member)
      redis.call('DEL', ARGV[2] .. member)
      redis.call('ZREM', KEYS[2], member)
    end
  end
end
return ended
