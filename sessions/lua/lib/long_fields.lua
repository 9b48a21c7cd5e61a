-- Long values in pieces: a user's identity 'i' and profile 'p' ('i', 'i2', 'i3', ...), a session's app data 'd'
-- and tokens 't'.
-- Redis keeps a hash in its compact listpack encoding only while every value is at most
-- hash-max-listpack-value (64 bytes by default): one longer value turns the whole hash into a hashtable,
-- about twice the bytes (docs/performance.md). Pieces of 64 bytes keep it compact.
-- A value stored whole (by Gatehouse before 2026-12, or one too long for pieces) reads the same: its
-- first field is longer than a piece. sessions/long_fields.py reads them the same way in Python.
-- scripts.py puts this file in front of every script that calls its functions, after a line that sets COMPACT:
-- false (SESSION_LAYOUT=whole) writes every value whole and tokens beside the session, as before 2026-12, so that
-- processes still running that version read what this one writes during a rolling upgrade.
local PIECE = 64
-- Beyond this many pieces (1 KB) a hash would pass hash-max-listpack-entries soon anyway: stored whole.
-- Reading stops there too, so a forged chain of pieces cannot make a script loop on.
local MAX_PIECES = 16

-- The whole value of `field`, given what HGET/HMGET already returned for it.
local function read_long(key, field, first)
  if not first or #first ~= PIECE then
    return first
  end
  -- The other pieces in one command (on a page view, one more command, not one per piece).
  local names = {}
  for n = 2, MAX_PIECES do
    names[n - 1] = field .. n
  end
  local parts = {first}
  for _, part in ipairs(redis.call('HMGET', key, unpack(names))) do
    if not part then
      break
    end
    table.insert(parts, part)
    if #part < PIECE then
      break
    end
  end
  return table.concat(parts)
end

-- True when `value` can be stored in pieces (at most MAX_PIECES of them).
local function fits_pieces(value)
  return COMPACT and #value <= PIECE * MAX_PIECES
end

-- Drop the pieces of `field` from the `from`th on (what a longer value left behind).
local function drop_pieces(key, field, from)
  if from == 1 then
    if redis.call('HDEL', key, field) == 0 then
      return
    end
    from = 2
  end
  while redis.call('HDEL', key, field .. from) == 1 do
    from = from + 1
  end
end

-- Store `value` in `field` (in pieces when it is longer than one), and drop pieces a longer value left.
local function write_long(key, field, value)
  local count = math.ceil(#value / PIECE)
  local args = {}
  if count <= 1 or count > MAX_PIECES or not COMPACT then
    count = 1
    args = {field, value}
  else
    for n = 1, count do
      table.insert(args, n == 1 and field or field .. n)
      table.insert(args, string.sub(value, (n - 1) * PIECE + 1, n * PIECE))
    end
  end
  redis.call('HSET', key, unpack(args))
  drop_pieces(key, field, count + 1)
end

-- A state written whole by an earlier version stays a hashtable even once its values are short (Redis never
-- converts back): rewrite it field by field into a fresh key, keeping its expiry.
local function compact_state(key)
  if not COMPACT then
    return
  end
  local first = redis.call('HMGET', key, 'i', 'p')
  local whole = false
  for _, value in ipairs(first) do
    if value and #value > PIECE and #value <= PIECE * MAX_PIECES then
      whole = true
    end
  end
  if not whole then
    return
  end
  local fields = redis.call('HGETALL', key)
  local ttl = redis.call('PTTL', key)
  redis.call('DEL', key)
  for n = 1, #fields, 2 do
    if fields[n] == 'i' or fields[n] == 'p' then
      write_long(key, fields[n], fields[n + 1])
    elseif not string.match(fields[n], '^[ip]%d+$') then
      -- (pieces beside a whole value would be left over from nothing this code writes: dropped)
      redis.call('HSET', key, fields[n], fields[n + 1])
    end
  end
  if ttl > 0 then
    redis.call('PEXPIRE', key, ttl)
  end
end
