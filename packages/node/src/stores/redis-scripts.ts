import { createHash } from 'node:crypto'

/**
 * A Lua script of `RedisLinkStore`, run by SHA (EVALSHA) and sent as source only when Redis
 * does not know it.
 *
 * @example
 * const { sha, source } = REDIS_SCRIPTS.REVOKE_LINK
 */
export interface Script {
  source: string
  sha: string
}

function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/*
 * Every script touches the keys of one hash slot only, so that each runs on Redis Cluster as it
 * does on one Redis: one key, or the keys of one tab (`stream:{tabId}` and `events:{tabId}`
 * share the tag `{tabId}`). What spans entities (a link and its session's and user's indexes)
 * is done by `RedisLinkStore` as ordered steps, each of them one of these scripts.
 *
 * The per-session and per-user indexes are sorted sets of token hashes scored by the link's
 * expiresAt. An entry is a hint, checked against the link by every reader; it goes when its
 * score passes (pruned here and by sweep, with no need to read the link in another slot) or
 * when the link moves away (UNINDEX, by the step that moved it). Each index key expires with its
 * latest entry.
 */

const LAST_SCORE = `
local function expire_with_last(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', key, last[2]) end
end
`

/**
 * KEYS: index. ARGV: hash, expiresAt. Adds the entry, or raises its score (GT: never lowers
 * it), drops the entries whose link has expired by Redis's clock, and makes the key live as
 * long as its latest entry.
 */
const INDEX = script(LAST_SCORE + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
expire_with_last(KEYS[1])
return 1
`)

/** KEYS: index. ARGV: hash. Removes the entry; the key then lives as long as its latest one. */
const UNINDEX = script(LAST_SCORE + `
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
expire_with_last(KEYS[1])
return 1
`)

/**
 * KEYS: link. ARGV: sessionId, createdAt, lastSeenAt, expiresAt, revokedAt|'', replacedAt|'',
 * userId|'', successor|'', predecessor|''. Replaces the record; returns the session and user it
 * named before ('' for none).
 */
const PUT_LINK = script(`
local old = redis.call('HMGET', KEYS[1], 's', 'u')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', ARGV[1], 'c', ARGV[2], 'l', ARGV[3], 'e', ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'r', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'p', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'u', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'n', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'v', ARGV[9]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return {old[1] or '', old[2] or ''}
`)

/**
 * KEYS: link. ARGV: sessionId, lastSeenAt. Same session: records lastSeenAt, returns 1. Another
 * session: changes nothing and returns {its session, expiresAt} (a move, done by MOVE_LINK once
 * the new session's index has the entry). Unknown link: 0.
 */
const TOUCH_LINK = script(`
local f = redis.call('HMGET', KEYS[1], 's', 'e')
if not f[1] then return 0 end
if f[1] ~= ARGV[1] then return {f[1], f[2]} end
redis.call('HSET', KEYS[1], 'l', ARGV[2])
return 1
`)

/** KEYS: link. ARGV: sessionId, lastSeenAt. Points the link at the session; returns {previous session, expiresAt}, or false. */
const MOVE_LINK = script(`
local f = redis.call('HMGET', KEYS[1], 's', 'e')
if not f[1] then return false end
redis.call('HSET', KEYS[1], 's', ARGV[1], 'l', ARGV[2])
return {f[1], f[2]}
`)

// KEYS: link. ARGV: revokedAt. HSETNX alone would create a stub hash for an unknown token.
const REVOKE_LINK = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 'r', ARGV[1])
`)

/** KEYS: link. ARGV: sessionId, revokedAt. Revokes the link if it still names the session and is not revoked yet: 1, else 0. */
const REVOKE_IF_IN = script(`
if redis.call('HGET', KEYS[1], 's') ~= ARGV[1] then return 0 end
return redis.call('HSETNX', KEYS[1], 'r', ARGV[2])
`)

/**
 * KEYS: link. ARGV: sessionId, userId|''. Names the user of the link if it still names the
 * session and another user: returns the previous user ('' for none), else false.
 */
const SET_LINK_USER = script(`
local f = redis.call('HMGET', KEYS[1], 's', 'u')
if f[1] ~= ARGV[1] or (f[2] or '') == ARGV[2] then return false end
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], 'u') else redis.call('HSET', KEYS[1], 'u', ARGV[2]) end
return f[2] or ''
`)

/*
 * KEYS: call. ARGV: now, expiresAt of a new claim, the claim's owner as digits or ''. The value
 * is "<expiresAt>|<reply json>" (empty reply = pending); the expiry is checked against the
 * caller's clock as well, so an expired result is never answered even when Redis has not
 * dropped the key yet. A pending claim with an owner is "<expiresAt>.<owner>|": the owner rides
 * as a fraction of the expiry, so a version that knows no owners still reads the expiry (and
 * the pending state) right. Its owner takes it again: the claim is new for it.
 */
const CLAIM_CALL = script(`
local v = redis.call('GET', KEYS[1])
if v then
  local bar = string.find(v, '|', 1, true)
  if bar and tonumber(string.sub(v, 1, bar - 1)) > tonumber(ARGV[1]) then
    local dot = string.find(v, '.', 1, true)
    local mine = ARGV[3] ~= '' and bar == #v and dot and dot < bar and string.sub(v, dot + 1, bar - 1) == ARGV[3]
    if not mine then return v end
  end
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2] .. '|', 'PXAT', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2] .. '.' .. ARGV[3] .. '|', 'PXAT', ARGV[2])
end
return false
`)

/*
 * Durable events. Per tab, `stream:{tabId}` is a hash { q: last seq, b: bytes held, e: expiry }
 * and `events:{tabId}` a sorted set scored by seq whose members are
 * "<seq>:<expiresAt>:<bytes>:<JSON [event, args]>". The scripts read only that header, so
 * Lua never decodes the arguments (cjson would re-encode large numbers and empty arrays
 * differently); the seq in front also keeps two identical payloads distinct members.
 * Expiry is checked against the caller's `now`, as for call results; the keys' PEXPIREAT lets
 * Redis drop whole streams that nobody reads any more. Seqs (streamBase: 16 digits) are exact
 * in Lua's doubles and as redis.call arguments, but `..` and tostring print numbers with
 * %.14g, so a seq is turned into text with string.format('%.0f').
 */
const EVENT_HELPERS = `
local function header(m)
  local a = string.find(m, ':', 1, true)
  local b = string.find(m, ':', a + 1, true)
  local c = string.find(m, ':', b + 1, true)
  return tonumber(string.sub(m, 1, a - 1)), tonumber(string.sub(m, a + 1, b - 1)), tonumber(string.sub(m, b + 1, c - 1))
end
`

/*
 * Tabs seen: their streams. KEYS: per tab, its stream and its events. ARGV: seenUntil, now,
 * streamBase(now). A live stream is kept at least until seenUntil, so a tab seen again keeps its
 * counter even with no event pending; a tab without a live stream gets a new, empty one in a
 * later block. Returns each tab's last seq, as text (see EVENT_HELPERS).
 */
const RECORD_STREAMS = script(`
local out = {}
for i = 1, #KEYS / 2 do
  local stream, events = KEYS[2 * i - 1], KEYS[2 * i]
  local f = redis.call('HMGET', stream, 'q', 'e')
  local e = tonumber(f[2])
  if f[1] and e and e > tonumber(ARGV[2]) then
    if e < tonumber(ARGV[1]) then
      redis.call('HSET', stream, 'e', ARGV[1])
      redis.call('PEXPIREAT', stream, ARGV[1])
    end
    out[i] = f[1]
  else
    redis.call('DEL', stream, events)
    redis.call('HSET', stream, 'q', ARGV[3], 'b', 0, 'e', ARGV[1])
    redis.call('PEXPIREAT', stream, ARGV[1])
    out[i] = ARGV[3]
  end
end
return out
`)

/*
 * Tabs seen: the tabs of their sessions. KEYS: sessions' tab sets. ARGV: seenUntil, now, then
 * per key the number of its tabs and their ids. Each set lives as long as its latest tab;
 * expired tabs are pruned here.
 */
const RECORD_SESSION_TABS = script(`
local a = 3
for i = 1, #KEYS do
  local n = tonumber(ARGV[a])
  for j = 1, n do redis.call('ZADD', KEYS[i], ARGV[1], ARGV[a + j]) end
  a = a + n + 1
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[2])
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', KEYS[i], last[2]) end
end
return 1
`)

/*
 * KEYS: stream, events. ARGV: now, expiresAt, maxEvents, maxBytes, bytes, JSON [event, args],
 * streamBase(now), the event's key or ''. Quota check, increment and append in one step, so
 * appends from any node get consecutive numbers; a tab with no live stream starts a new one after
 * streamBase. Expired events are dropped from the front first: every append uses now + window, so
 * they expire in seq order. Nothing is written when the quota refuses. An event's key lives in the
 * stream hash as field "k:<key>" = "<seq>:<expiresAt>" (no key of its own: it stays with the
 * tab's other keys); a key seen before and unexpired returns its seq and writes nothing. Returns
 * {seq}, or {0, held events, held bytes} when refused.
 */
const APPEND_EVENT = script(EVENT_HELPERS + `
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'q', 'b', 'e')
local live = f[1] and tonumber(f[3]) > now
if live and ARGV[8] ~= '' then
  local known = redis.call('HGET', KEYS[1], 'k:' .. ARGV[8])
  if known then
    local colon = string.find(known, ':', 1, true)
    if tonumber(string.sub(known, colon + 1)) > now then return {string.sub(known, 1, colon - 1)} end
  end
end
local q, b, e, n, drop = tonumber(ARGV[7]), 0, ARGV[2], 0, 0
if live then
  q = tonumber(f[1])
  b = tonumber(f[2])
  if tonumber(f[3]) > tonumber(ARGV[2]) then e = f[3] end
  n = redis.call('ZCARD', KEYS[2])
  -- The events key went (its TTL, eviction) while the stream lived on: nothing is held.
  if n == 0 then b = 0 end
  while drop < n do
    local _, expires, bytes = header(redis.call('ZRANGE', KEYS[2], drop, drop)[1])
    if expires > now then break end
    drop = drop + 1
    b = b - bytes
  end
  n = n - drop
end
if n + 1 > tonumber(ARGV[3]) or b + tonumber(ARGV[5]) > tonumber(ARGV[4]) then return {0, n, b} end
if not live then redis.call('DEL', KEYS[1], KEYS[2]) end
if drop > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, drop - 1) end
q = string.format('%.0f', q + 1)
redis.call('ZADD', KEYS[2], q, q .. ':' .. ARGV[2] .. ':' .. ARGV[5] .. ':' .. ARGV[6])
redis.call('HSET', KEYS[1], 'q', q, 'b', b + tonumber(ARGV[5]), 'e', e)
if ARGV[8] ~= '' then
  redis.call('HSET', KEYS[1], 'k:' .. ARGV[8], q .. ':' .. ARGV[2])
  -- Bounded like the events: past twice the quota, the expired keys go.
  if redis.call('HLEN', KEYS[1]) > 2 * tonumber(ARGV[3]) + 3 then
    local all = redis.call('HGETALL', KEYS[1])
    for i = 1, #all, 2 do
      if string.sub(all[i], 1, 2) == 'k:' then
        local colon = string.find(all[i + 1], ':', 1, true)
        if tonumber(string.sub(all[i + 1], colon + 1)) <= now then redis.call('HDEL', KEYS[1], all[i]) end
      end
    end
  end
end
redis.call('PEXPIREAT', KEYS[1], e)
redis.call('PEXPIREAT', KEYS[2], e)
return {q}
`)

/*
 * KEYS: stream, events. ARGV: now, afterSeq. One script so the last seq and the events come
 * from one instant. Returns {} for no live stream, else {lastSeq, member…} of the unexpired
 * events after afterSeq, in order.
 */
const READ_EVENTS = script(EVENT_HELPERS + `
local now = tonumber(ARGV[1])
local f = redis.call('HMGET', KEYS[1], 'q', 'e')
if not f[1] or tonumber(f[2]) <= now then return {} end
local out = {f[1]}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[2], '+inf')) do
  local _, expires = header(m)
  if expires > now then out[#out + 1] = m end
end
return out
`)

// KEYS: stream, events. ARGV: uptoSeq. Removes the events and their bytes from the total.
const ACK_EVENTS = script(EVENT_HELPERS + `
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
if #gone == 0 then return 0 end
local sum = 0
for _, m in ipairs(gone) do
  local _, _, bytes = header(m)
  sum = sum + bytes
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
local b = tonumber(redis.call('HGET', KEYS[1], 'b'))
if b then redis.call('HSET', KEYS[1], 'b', b - sum) end
return #gone
`)

/**
 * Every Lua script of `RedisLinkStore`; each touches the keys of one hash slot.
 *
 * @example
 * const { REVOKE_LINK } = REDIS_SCRIPTS
 * await client.sendCommand(['EVALSHA', REVOKE_LINK.sha, '1', key, String(Date.now())])
 */
export const REDIS_SCRIPTS = {
  INDEX,
  UNINDEX,
  PUT_LINK,
  TOUCH_LINK,
  MOVE_LINK,
  REVOKE_LINK,
  REVOKE_IF_IN,
  SET_LINK_USER,
  CLAIM_CALL,
  RECORD_STREAMS,
  RECORD_SESSION_TABS,
  APPEND_EVENT,
  READ_EVENTS,
  ACK_EVENTS,
} as const
