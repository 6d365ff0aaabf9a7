import { createHash } from 'node:crypto'
import createDebug from 'debug'
import { ErrorReply, type RedisClientType } from 'redis'
import { SessionSocketError, type CallReply } from '@session-socket/protocol'
import {
  streamBase,
  type CallClaim,
  type EventQuota,
  type EventRead,
  type LinkRecord,
  type LinkStore,
  type NewDurableEvent,
  type RestoreCodeRecord,
  type StoredEvent,
  type TabSeen,
} from '../link-store.js'

const debug = createDebug('session-socket:redis')

/** Options of {@link RedisLinkStore}. */
export interface RedisLinkStoreOptions {
  /**
   * A node-redis (v5 or v6) client, already connected and owned by you: `close()` does not quit
   * it. Create it with `disableOfflineQueue: true` and a `socket.reconnectStrategy`, so commands
   * fail at once while Redis is away (instead of queueing until it is back) and the client
   * reconnects by itself. Attach an `error` listener, or node-redis throws its errors.
   */
  client: RedisClientType<any, any, any, any, any>
  /**
   * Prefix of every key the store writes. Where keys are routed by hash slot (a cluster proxy),
   * use a hash tag such as `'{ss}:'` so the multi-key scripts find all their keys in one slot.
   * @default 'ss:'
   */
  prefix?: string
  /**
   * How long one command may take before the call rejects with STORE_UNAVAILABLE, in ms. It
   * bounds the wait when Redis stops answering without closing the connection.
   * @default 2000
   */
  commandTimeoutMs?: number
}

interface Script {
  source: string
  sha: string
}

/*
 * Shared Lua helpers. `index` adds a link to its session's set and keeps the set alive at least
 * as long as the link, so a session's index goes away by itself after its last link expired.
 */
const LUA_PRELUDE = `
local function index(set, hash, expires_at)
  redis.call('SADD', set, hash)
  local ttl = redis.call('PTTL', set)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if ttl < 0 or now + ttl < tonumber(expires_at) then
    redis.call('PEXPIREAT', set, expires_at)
  end
end
`

function script(body: string): Script {
  const source = LUA_PRELUDE + body
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/*
 * Every script that touches more than one key runs in Lua, so another node never sees a link
 * moved out of one session's index but not yet into the other, and of two concurrent claims or
 * revocations exactly one wins. Session-set and user-set keys other than the ones in KEYS are
 * built from ARGV (the set prefixes), which ties the store to one Redis primary (or one hash slot).
 * A user set (`user:<userId>`) holds the hashes of the links naming that user (field `u`), with
 * the same expiry rule as a session set.
 */

/*
 * KEYS: link, new session set, new user set (only with a userId). ARGV: set prefix, hash,
 * sessionId, createdAt, lastSeenAt, expiresAt, revokedAt|'', replacedAt|'', user set prefix, userId|''
 */
const PUT_LINK = script(`
local old = redis.call('HMGET', KEYS[1], 's', 'u')
if old[1] then redis.call('SREM', ARGV[1] .. old[1], ARGV[2]) end
if old[2] then redis.call('SREM', ARGV[9] .. old[2], ARGV[2]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', ARGV[3], 'c', ARGV[4], 'l', ARGV[5], 'e', ARGV[6])
if ARGV[7] ~= '' then redis.call('HSET', KEYS[1], 'r', ARGV[7]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'p', ARGV[8]) end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'u', ARGV[10]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
if redis.call('EXISTS', KEYS[1]) == 1 then
  index(KEYS[2], ARGV[2], ARGV[6])
  if ARGV[10] ~= '' then index(KEYS[3], ARGV[2], ARGV[6]) end
end
return 1
`)

// KEYS: link, new session set. ARGV: set prefix, hash, sessionId, lastSeenAt
const TOUCH_LINK = script(`
local f = redis.call('HMGET', KEYS[1], 's', 'e')
if not f[1] then return 0 end
if f[1] ~= ARGV[3] then
  redis.call('SREM', ARGV[1] .. f[1], ARGV[2])
  redis.call('HSET', KEYS[1], 's', ARGV[3])
  index(KEYS[2], ARGV[2], f[2])
end
redis.call('HSET', KEYS[1], 'l', ARGV[4])
return 1
`)

// KEYS: link. ARGV: revokedAt. HSETNX alone would create a stub hash for an unknown token.
const REVOKE_LINK = script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[1], 'r', ARGV[1])
`)

// KEYS: session set. ARGV: link prefix, sessionId, revokedAt. Prunes entries whose link is gone.
const REVOKE_SESSION = script(`
local n = 0
for _, hash in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. hash
  if redis.call('HGET', key, 's') ~= ARGV[2] then
    redis.call('SREM', KEYS[1], hash)
  elseif redis.call('HSETNX', key, 'r', ARGV[3]) == 1 then
    n = n + 1
  end
end
return n
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
 * KEYS: session set, new user set (only with a userId). ARGV: link prefix, sessionId, user set
 * prefix, userId|''. Moves every link of the session (revoked ones too) to the user's set.
 * Prunes entries whose link is gone. Returns how many links changed.
 */
const SET_SESSION_USER = script(`
local n = 0
for _, hash in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. hash
  local f = redis.call('HMGET', key, 's', 'u', 'e')
  if f[1] ~= ARGV[2] then
    redis.call('SREM', KEYS[1], hash)
  elseif (f[2] or '') ~= ARGV[4] then
    if f[2] then redis.call('SREM', ARGV[3] .. f[2], hash) end
    if ARGV[4] == '' then
      redis.call('HDEL', key, 'u')
    else
      redis.call('HSET', key, 'u', ARGV[4])
      index(KEYS[2], hash, f[3])
    end
    n = n + 1
  end
end
return n
`)

/*
 * KEYS: user set. ARGV: link prefix, userId, now. The sessions of the user's unexpired links,
 * each once. Prunes entries whose link is gone or names someone else now.
 */
const USER_SESSIONS = script(`
local out, seen = {}, {}
for _, hash in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local f = redis.call('HMGET', ARGV[1] .. hash, 's', 'u', 'e')
  if f[2] ~= ARGV[2] then
    redis.call('SREM', KEYS[1], hash)
  elseif tonumber(f[3]) > tonumber(ARGV[3]) and not seen[f[1]] then
    seen[f[1]] = true
    out[#out + 1] = f[1]
  end
end
return out
`)

// KEYS: a session or user set. ARGV: link prefix, the set's session or user id, the link field
// naming it ('s' or 'u'). Drops entries whose link is gone or names another; returns how many.
const PRUNE_SET = script(`
local n = 0
for _, hash in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HGET', ARGV[1] .. hash, ARGV[3]) ~= ARGV[2] then
    redis.call('SREM', KEYS[1], hash)
    n = n + 1
  end
end
return n
`)

/*
 * Durable events. Per tab, `stream:<tabId>` is a hash { q: last seq, b: bytes held, e: expiry }
 * and `events:<tabId>` a sorted set scored by seq whose members are
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
 * A batch of tabs seen, in one call (one round trip for a reconnect storm). KEYS: per entry,
 * its session's tabs, its tab's stream, its tab's events. ARGV: seenUntil, now,
 * streamBase(now), then the entries' tab ids. Each session set lives as long as its latest tab;
 * a live stream is kept at least until seenUntil, so a tab seen again keeps its counter even
 * with no event pending; a tab without a live stream gets a new, empty one in a later block.
 * Expired tabs are pruned here. Returns each entry's last seq, as text (see EVENT_HELPERS).
 */
const RECORD_TABS = script(`
local out = {}
for i = 1, #KEYS / 3 do
  local tabs, stream, events = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  redis.call('ZADD', tabs, ARGV[1], ARGV[3 + i])
  redis.call('ZREMRANGEBYSCORE', tabs, '-inf', ARGV[2])
  local last = redis.call('ZRANGE', tabs, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', tabs, last[2]) end
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

/** Reads one events member: "<seq>:<expiresAt>:<bytes>:<JSON [event, args]>". */
function toStoredEvent(member: string): StoredEvent {
  const a = member.indexOf(':')
  const b = member.indexOf(':', a + 1)
  const c = member.indexOf(':', b + 1)
  const [event, args] = JSON.parse(member.slice(c + 1)) as [string, unknown[]]
  return { seq: Number(member.slice(0, a)), event, args, expiresAt: Number(member.slice(a + 1, b)) }
}

/*
 * Error replies that mean "Redis cannot serve this now" (loading after a restart, a replica
 * after failover, out of memory, a script running too long) rather than a bug in a command.
 */
const UNAVAILABLE_REPLY = /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|OOM|NOREPLICAS|MISCONF)\b/

function unavailable(cause: unknown): SessionSocketError {
  return new SessionSocketError('STORE_UNAVAILABLE', 'link store unavailable', { retryAfter: 1000, cause })
}

function toError(err: unknown): unknown {
  if (err instanceof SessionSocketError) return err
  // Every non-reply error of node-redis is about the connection: closed, offline, timed out.
  if (!(err instanceof ErrorReply) || UNAVAILABLE_REPLY.test(err.message)) return unavailable(err)
  return err
}

/** A claim owner as the digits CLAIM_CALL keeps after the expiry's decimal point (48 bits of its hash). */
function ownerDigits(owner: string): string {
  return String(createHash('sha1').update(owner).digest().readUIntBE(0, 6))
}

/** Escapes SCAN MATCH glob characters so a prefix is matched literally. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&')
}

function toNumber(value: unknown): number {
  return Number(value)
}

/**
 * Keeps links in Redis, shared by every node of a cluster and kept across restarts as far as
 * Redis persists its data. Links, restore codes and call results expire in Redis by
 * PEXPIREAT; each session has a set of its links for `revokeSession` and `setSessionUser`, and
 * each user one for `userSessions` (both expire with their latest link and are pruned by `sweep`).
 * Durable events wait for their tab in `events:<tabId>`, numbered by `stream:<tabId>`, and
 * `tabs:<sessionId>` lists the tabs of each session, all updated by Lua scripts.
 * Needs Redis 6.2 or later (GETDEL, SET PXAT) and one primary: the Lua scripts touch keys of
 * several sessions at once, which Redis Cluster refuses unless they share a slot.
 *
 * When Redis cannot be reached every method rejects at once (or after `commandTimeoutMs`) with
 * `SessionSocketError('STORE_UNAVAILABLE')`, which the server turns into a retryable error.
 *
 * @example
 * import { createClient } from 'redis'
 * import { RedisLinkStore } from '@session-socket/node/redis'
 * const client = createClient({
 *   url: process.env.REDIS_URL,
 *   disableOfflineQueue: true,
 *   socket: { reconnectStrategy: (retries) => Math.min(retries * 100, 2000) },
 * })
 * client.on('error', (err) => console.warn('redis', err.message))
 * await client.connect()
 * const ss = createSessionSocketServer(io, { session, store: new RedisLinkStore({ client }) })
 */
export class RedisLinkStore implements LinkStore {
  readonly #client: RedisClientType<any, any, any, any, any>
  readonly #linkPrefix: string
  readonly #setPrefix: string
  readonly #userPrefix: string
  readonly #codePrefix: string
  readonly #callPrefix: string
  readonly #tabsPrefix: string
  readonly #streamPrefix: string
  readonly #eventsPrefix: string
  readonly #timeoutMs: number
  #closed = false

  constructor(options: RedisLinkStoreOptions) {
    const prefix = options.prefix ?? 'ss:'
    this.#client = options.client
    this.#linkPrefix = `${prefix}link:`
    this.#setPrefix = `${prefix}sess:`
    this.#userPrefix = `${prefix}user:`
    this.#codePrefix = `${prefix}code:`
    this.#callPrefix = `${prefix}call:`
    this.#tabsPrefix = `${prefix}tabs:`
    this.#streamPrefix = `${prefix}stream:`
    this.#eventsPrefix = `${prefix}events:`
    this.#timeoutMs = options.commandTimeoutMs ?? 2000
  }

  async getLink(tokenHash: string): Promise<LinkRecord | null> {
    const reply = await this.#send(['HMGET', this.#linkPrefix + tokenHash, 's', 'c', 'l', 'e', 'r', 'p', 'u'])
    const [s, c, l, e, r, p, u] = reply as Array<string | null>
    if (typeof s !== 'string') return null
    const record: LinkRecord = { sessionId: s, createdAt: toNumber(c), lastSeenAt: toNumber(l), expiresAt: toNumber(e) }
    if (typeof r === 'string') record.revokedAt = toNumber(r)
    if (typeof p === 'string') record.replacedAt = toNumber(p)
    if (typeof u === 'string') record.userId = u
    return record
  }

  async putLink(tokenHash: string, record: LinkRecord): Promise<void> {
    const keys = [this.#linkPrefix + tokenHash, this.#setPrefix + record.sessionId]
    if (record.userId !== undefined) keys.push(this.#userPrefix + record.userId)
    await this.#eval(
      PUT_LINK,
      keys,
      [
        this.#setPrefix,
        tokenHash,
        record.sessionId,
        String(record.createdAt),
        String(record.lastSeenAt),
        String(record.expiresAt),
        record.revokedAt === undefined ? '' : String(record.revokedAt),
        record.replacedAt === undefined ? '' : String(record.replacedAt),
        this.#userPrefix,
        record.userId ?? '',
      ],
    )
  }

  async touchLink(tokenHash: string, sessionId: string, lastSeenAt: number): Promise<void> {
    await this.#eval(
      TOUCH_LINK,
      [this.#linkPrefix + tokenHash, this.#setPrefix + sessionId],
      [this.#setPrefix, tokenHash, sessionId, String(lastSeenAt)],
    )
  }

  async revokeLink(tokenHash: string, revokedAt: number): Promise<void> {
    await this.#eval(REVOKE_LINK, [this.#linkPrefix + tokenHash], [String(revokedAt)])
  }

  async revokeSession(sessionId: string, revokedAt: number): Promise<number> {
    const n = await this.#eval(
      REVOKE_SESSION,
      [this.#setPrefix + sessionId],
      [this.#linkPrefix, sessionId, String(revokedAt)],
    )
    return toNumber(n)
  }

  async setSessionUser(sessionId: string, userId: string | null): Promise<number> {
    const keys = [this.#setPrefix + sessionId]
    if (userId !== null) keys.push(this.#userPrefix + userId)
    const n = await this.#eval(SET_SESSION_USER, keys, [this.#linkPrefix, sessionId, this.#userPrefix, userId ?? ''])
    return toNumber(n)
  }

  async userSessions(userId: string, now: number): Promise<string[]> {
    const reply = await this.#eval(USER_SESSIONS, [this.#userPrefix + userId], [this.#linkPrefix, userId, String(now)])
    return reply as string[]
  }

  async putRestoreCode(codeHash: string, record: RestoreCodeRecord): Promise<void> {
    const value = JSON.stringify({ sessionId: record.sessionId, expiresAt: record.expiresAt })
    await this.#send(['SET', this.#codePrefix + codeHash, value, 'PXAT', String(record.expiresAt)])
  }

  async takeRestoreCode(codeHash: string, now: number): Promise<RestoreCodeRecord | null> {
    const value = await this.#send(['GETDEL', this.#codePrefix + codeHash])
    if (typeof value !== 'string') return null
    const record = JSON.parse(value) as RestoreCodeRecord
    return record.expiresAt > now ? record : null
  }

  async claimCall(key: string, ttlMs: number, now: number, owner?: string): Promise<CallClaim> {
    const value = await this.#eval(CLAIM_CALL, [this.#callPrefix + key], [String(now), String(now + ttlMs), owner === undefined ? '' : ownerDigits(owner)])
    if (typeof value !== 'string') return { state: 'new' }
    const json = value.slice(value.indexOf('|') + 1)
    return json === '' ? { state: 'pending' } : { state: 'done', reply: JSON.parse(json) as CallReply }
  }

  async finishCall(key: string, reply: CallReply, ttlMs: number, now: number): Promise<void> {
    const expiresAt = String(now + ttlMs)
    await this.#send(['SET', this.#callPrefix + key, `${expiresAt}|${JSON.stringify(reply)}`, 'PXAT', expiresAt])
  }

  async releaseCall(key: string): Promise<void> {
    await this.#send(['DEL', this.#callPrefix + key])
  }

  async recordTabs(tabs: readonly TabSeen[], now: number, windowMs: number): Promise<number[]> {
    if (tabs.length === 0) return []
    const keys: string[] = []
    const args = [String(now + windowMs), String(now), String(streamBase(now))]
    for (const { sessionId, tabId } of tabs) {
      keys.push(this.#tabsPrefix + sessionId, this.#streamPrefix + tabId, this.#eventsPrefix + tabId)
      args.push(tabId)
    }
    const reply = (await this.#eval(RECORD_TABS, keys, args)) as unknown[]
    return reply.map(toNumber)
  }

  async sessionTabs(sessionId: string, now: number): Promise<string[]> {
    const reply = await this.#send(['ZRANGEBYSCORE', this.#tabsPrefix + sessionId, `(${now}`, '+inf'])
    return reply as string[]
  }

  async appendEvent(
    tabId: string,
    event: NewDurableEvent,
    expiresAt: number,
    quota: EventQuota,
    now: number,
  ): Promise<number> {
    const reply = (await this.#eval(
      APPEND_EVENT,
      [this.#streamPrefix + tabId, this.#eventsPrefix + tabId],
      [
        String(now),
        String(expiresAt),
        String(quota.maxEvents),
        String(quota.maxBytes),
        String(event.bytes),
        JSON.stringify([event.event, event.args]),
        String(streamBase(now)),
        event.key ?? '',
      ],
    )) as unknown[]
    const seq = toNumber(reply[0])
    if (seq === 0) {
      throw new SessionSocketError(
        'QUOTA_EXCEEDED',
        `tab ${tabId} already holds ${toNumber(reply[1])} unacknowledged durable events (${toNumber(reply[2])} bytes)`,
      )
    }
    return seq
  }

  async readEvents(tabId: string, afterSeq: number, now: number): Promise<EventRead> {
    const reply = (await this.#eval(
      READ_EVENTS,
      [this.#streamPrefix + tabId, this.#eventsPrefix + tabId],
      [String(now), String(afterSeq)],
    )) as string[]
    if (reply.length === 0) return { lastSeq: 0, events: [], gap: afterSeq > 0 }
    const lastSeq = toNumber(reply[0])
    const events = reply.slice(1).map(toStoredEvent)
    // Stored seqs are distinct and at most lastSeq: fewer than lastSeq - afterSeq means one is gone.
    return { lastSeq, events, gap: afterSeq > lastSeq || (afterSeq < lastSeq && events.length !== lastSeq - afterSeq) }
  }

  async ackEvents(tabId: string, uptoSeq: number): Promise<void> {
    await this.#eval(ACK_EVENTS, [this.#streamPrefix + tabId, this.#eventsPrefix + tabId], [String(uptoSeq)])
  }

  /**
   * Redis drops expired links, codes, results, tabs and event streams by itself; this prunes
   * session and user sets of entries whose link is gone (or names another user now) and returns
   * how many entries went. `now` is not needed.
   */
  async sweep(_now: number): Promise<number> {
    if (this.#closed) return 0
    let count = 0
    for (const [setPrefix, field] of [[this.#setPrefix, 's'], [this.#userPrefix, 'u']] as const) {
      const pattern = `${globEscape(setPrefix)}*`
      let cursor = '0'
      do {
        const reply = (await this.#send(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '200'])) as [string, string[]]
        cursor = String(reply[0])
        for (const key of reply[1]) {
          count += toNumber(await this.#eval(PRUNE_SET, [key], [this.#linkPrefix, key.slice(setPrefix.length), field]))
        }
      } while (cursor !== '0')
    }
    debug('pruned %d session and user index entries', count)
    return count
  }

  /** Stops using the client; the client stays connected (it is yours). */
  async close(): Promise<void> {
    this.#closed = true
  }

  /*
   * Runs a script by SHA and sends its source only when Redis does not know it (first use, or
   * after a restart emptied the script cache).
   */
  async #eval(s: Script, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await this.#send(['EVALSHA', s.sha, ...tail])
    } catch (err) {
      if (err instanceof ErrorReply && err.message.startsWith('NOSCRIPT')) {
        return this.#send(['EVAL', s.source, ...tail])
      }
      throw err
    }
  }

  /*
   * Sends one command. Refuses at once while the client is not ready, so a client created
   * without `disableOfflineQueue` does not queue our commands until Redis is back, and gives up
   * after `commandTimeoutMs` when Redis holds the connection open but does not answer.
   */
  async #send(args: string[]): Promise<unknown> {
    // Closed by a shutdown in progress: retryable, a client reconnecting now gets another node or this one restarted.
    if (this.#closed) throw new SessionSocketError('STORE_UNAVAILABLE', 'link store closed', { retryAfter: 1000 })
    if (!this.#client.isReady) throw unavailable(new Error('redis client is not ready'))
    let timer: ReturnType<typeof setTimeout> | undefined
    // A command given up on is also taken out of node-redis's queue if it was not written yet:
    // sent after its caller was told STORE_UNAVAILABLE, a claim would hold the call for its lease.
    const abandoned = new AbortController()
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abandoned.abort()
        reject(unavailable(new Error(`redis did not answer within ${this.#timeoutMs} ms`)))
      }, this.#timeoutMs)
    })
    try {
      return await Promise.race([this.#client.sendCommand(args, { abortSignal: abandoned.signal }), timeout])
    } catch (err) {
      const converted = toError(err)
      if (converted instanceof SessionSocketError) debug('%s failed: %O', args[0], err)
      throw converted
    } finally {
      clearTimeout(timer)
    }
  }
}
