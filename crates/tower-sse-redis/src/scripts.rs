//! The Lua scripts that make a read, and an append, one atomic step.
//!
//! A read must decide how the cursor relates to what the stream retains and fetch the
//! entries in the same instant: if trimming ran between the two, entries after the cursor
//! could vanish unreported. A script runs atomically on the server, and reads the server's
//! clock, the one that made the ids, for the age limit.
//!
//! Ids are compared as decimal strings (shorter is smaller, then byte order), exact for any
//! `u64` where Lua's numbers (doubles) are not. Redis writes ids canonically, and the Rust side
//! passes only canonical cursors.

/// Shared Lua: id comparison and the retention floor.
///
/// `floor(key, max_age)` is the newest id that is gone: entries at or before it are never
/// replayed. Once trimming has dropped anything, the oldest entry still stored is kept as a
/// marker of where retention cut (appends keep one entry more than `max_events` for it): a
/// reader whose cursor is that entry missed nothing, a reader before it did. Entries older than
/// `max_age` by the server's clock count as gone too, trimmed or not.
const PRELUDE: &str = r"
local function split(id)
  local dash = string.find(id, '-', 1, true)
  return string.sub(id, 1, dash - 1), string.sub(id, dash + 1)
end
local function cmp_digits(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function cmp(a, b)
  local am, as = split(a)
  local bm, bs = split(b)
  local c = cmp_digits(am, bm)
  if c ~= 0 then return c end
  return cmp_digits(as, bs)
end
-- The newest entry whose age, by the server's clock, has reached max_age (ms), or nil.
local function newest_expired(key, max_age)
  if max_age <= 0 then return nil end
  local now = redis.call('TIME')
  local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - max_age
  if cutoff < 0 then return nil end
  local before = '(' .. string.format('%.0f', cutoff + 1) .. '-0'
  local expired = redis.call('XREVRANGE', key, before, '-', 'COUNT', 1)
  if #expired == 0 then return nil end
  return expired[1][1]
end
";

/// Reads after a cursor. `KEYS[1]` the stream; `ARGV[1]` the cursor (`''` for none),
/// `ARGV[2]` the most entries to return (`0`: none, only the position), `ARGV[3]` the age
/// limit in ms (`0`: none).
///
/// Returns `{last_generated_id, outcome, oldest, entries}`, with `outcome` one of `fresh`,
/// `resumed`, `gap`, `ahead`, `unissued`, `oldest` the first replayable id for a gap (or
/// `''`), and `entries` as `XRANGE` returns them.
pub(crate) const READ_AFTER: &str = r"
local key, cursor, count, max_age = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if redis.call('EXISTS', key) == 0 then
  if cursor == '' then return {'0-0', 'fresh', '', {}} end
  if cursor == '0-0' then return {'0-0', 'resumed', '', {}} end
  return {'0-0', 'ahead', '', {}}
end
local info = redis.call('XINFO', 'STREAM', key)
local fields = {}
for i = 1, #info, 2 do fields[info[i]] = info[i + 1] end
local last, added, length = fields['last-generated-id'], fields['entries-added'], fields['length']
if added == nil then
  return redis.error_reply('tower-sse-redis needs Redis 7.0 or later (no entries-added)')
end
local floor = '0-0'
if added > length then
  if fields['first-entry'] then floor = fields['first-entry'][1] else floor = last end
end
local expired = newest_expired(key, max_age)
if expired and cmp(expired, floor) > 0 then floor = expired end

local outcome, start
if cursor == '' then
  outcome, start = 'fresh', floor
elseif cmp(cursor, last) > 0 then
  return {last, 'ahead', '', {}}
else
  local c = cmp(cursor, floor)
  if c < 0 then
    outcome, start = 'gap', floor
  elseif c == 0 or #redis.call('XRANGE', key, cursor, cursor) == 1 then
    outcome, start = 'resumed', cursor
  else
    -- Between the floor and the newest id, yet not stored: never issued by this stream (it
    -- was recreated, or the cursor comes from another server).
    return {last, 'unissued', '', {}}
  end
end
local entries = {}
if count > 0 or outcome == 'gap' then
  entries = redis.call('XRANGE', key, '(' .. start, '+', 'COUNT', math.max(count, 1))
end
local oldest = ''
if outcome == 'gap' and #entries > 0 then oldest = entries[1][1] end
if count == 0 then entries = {} end
return {last, outcome, oldest, entries}
";

/// Appends. `KEYS[1]` the stream, `KEYS[2]` the log's last assigned id; `ARGV[1]` the trim
/// mode (`~` or `=`), `ARGV[2]` the `MAXLEN` (`''`: none), `ARGV[3]` the age limit in ms
/// (`0`: none), `ARGV[4..]` the frames, appended in order. Returns their ids.
///
/// Redis assigns ids per stream, so two topics could get the same `<ms>-<seq>`, and a cursor
/// of one would be misread as a position in the other. The ids are therefore chosen here,
/// from one clock per log: the server's time in ms, or the last id's ms with the next
/// sequence number when time has not moved past it, and always past the stream's own last
/// id. An age limit trims by `MINID` to the newest expired entry, which stays as the
/// retention marker.
pub(crate) const APPEND: &str = r"
local key, clock, mode, maxlen, max_age = KEYS[1], KEYS[2], ARGV[1], ARGV[2], tonumber(ARGV[3])
local function id_string(ms, seq)
  return string.format('%.0f', ms) .. '-' .. string.format('%.0f', seq)
end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local seq = -1
local function after(id)
  local lms, lseq = split(id)
  lms, lseq = tonumber(lms), tonumber(lseq)
  if lms > ms or (lms == ms and lseq > seq) then ms, seq = lms, lseq end
end
local last = redis.call('GET', clock)
if last then after(last) end
-- The entry holds the frame with its id line, so that a read returns it as is.
local function xadd(call, id, frame)
  local event = 'id: ' .. id .. '\n' .. frame
  if maxlen == '' then return call('XADD', key, id, 'event', event) end
  return call('XADD', key, 'MAXLEN', mode, maxlen, id, 'event', event)
end
local ids = {}
for i = 4, #ARGV do
  seq = seq + 1
  local id = id_string(ms, seq)
  local added = xadd(redis.pcall, id, ARGV[i])
  if type(added) == 'table' and added.err then
    -- The stream is past the clock (the clock key was lost): go past the stream.
    local info = redis.call('XINFO', 'STREAM', key)
    for j = 1, #info, 2 do
      if info[j] == 'last-generated-id' then after(info[j + 1]) end
    end
    seq = seq + 1
    id = id_string(ms, seq)
    xadd(redis.call, id, ARGV[i])
  end
  ids[#ids + 1] = id
end
if #ids > 0 then redis.call('SET', clock, ids[#ids]) end
local expired = newest_expired(key, max_age)
if expired then redis.call('XTRIM', key, 'MINID', mode, expired) end
return ids
";

/// A script: the prelude, then `body`.
pub(crate) fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("{PRELUDE}{body}"))
}
