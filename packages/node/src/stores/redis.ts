import { createHash } from 'node:crypto'
import createDebug from 'debug'
import { ErrorReply, type RedisClientType } from 'redis'
import { SessionSocketError, streamBase, type CallReply } from '@session-socket/protocol'
import type {
  CallClaim,
  EventQuota,
  EventRead,
  LinkRecord,
  LinkStore,
  NewDurableEvent,
  RestoreCodeRecord,
  StoredEvent,
  TabSeen,
} from '../link-store.js'
import { createRedisKeys, type RedisKeys } from './redis-keys.js'
import { REDIS_SCRIPTS, type Script } from './redis-scripts.js'

const debug = createDebug('session-socket:redis')

/**
 * What `RedisLinkStore` uses of a node-redis (v5 or v6) cluster client, as `createCluster`
 * returns it (a structural type: node-redis's own generic types do not accept each other).
 *
 * @example
 * const cluster: RedisLinkStoreCluster = createCluster({ rootNodes: [{ url: 'redis://10.0.0.1:7000' }] })
 */
export interface RedisLinkStoreCluster {
  readonly isReady: boolean
  /** The primaries, as the client knows the topology now. */
  readonly masters: readonly object[]
  nodeClient(master: never): Promise<{ sendCommand(args: string[]): Promise<unknown> }>
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[], options?: { abortSignal?: AbortSignal }): Promise<unknown>
}

/**
 * A connected node-redis (v5 or v6) client: of one Redis (`createClient`), or of Redis Cluster
 * (`createCluster`).
 *
 * @example
 * const client: RedisLinkStoreClient = await createCluster({ rootNodes: [{ url: 'redis://10.0.0.1:7000' }] }).connect()
 */
export type RedisLinkStoreClient = RedisClientType<any, any, any, any, any> | RedisLinkStoreCluster

/** Options of {@link RedisLinkStore}. */
export interface RedisLinkStoreOptions {
  /**
   * A node-redis client of one Redis (`createClient`) or of Redis Cluster (`createCluster`),
   * already connected and owned by you: `close()` does not quit it. Create it so that commands
   * fail at once while Redis (or a shard) is away, instead of queueing until it is back, and so
   * that it reconnects by itself: `disableOfflineQueue: true` and a `socket.reconnectStrategy`
   * (for a cluster, in `defaults`, plus `topologyRefreshOnReconnectionAttemptStrategy` so that
   * it finds a promoted replica quickly; see docs/scaling.md). Attach an `error` listener, or
   * node-redis throws its errors.
   */
  client: RedisLinkStoreClient
  /**
   * Prefix of every key the store writes. The store's keys already carry the hash tags Redis
   * Cluster needs; a prefix with a tag of its own (`'{ss}:'`) puts every key in one slot, for a
   * proxy that routes by slot but cannot be given a cluster client (correct, not sharded).
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

const {
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
} = REDIS_SCRIPTS

type SingleClient = RedisClientType<any, any, any, any, any>

function isCluster(client: RedisLinkStoreClient): client is RedisLinkStoreCluster {
  return 'masters' in client && typeof (client as RedisLinkStoreCluster).nodeClient === 'function'
}

/** HMGET s u e of a link: null where the link or the field is missing. */
type LinkFields = [string | null, string | null, string | null]

/**
 * Keeps links in Redis, shared by every node and kept across restarts as far as Redis persists
 * its data, on one Redis or on Redis Cluster (the same key layout on both: see
 * `createRedisKeys`). Links, restore codes and call results expire in Redis by PEXPIREAT. Each
 * session and each user has an index of its links, for `revokeSession`, `setSessionUser` and
 * `userSessions`, which expires with its latest link. Durable events wait for their tab in
 * `events:{tabId}`, numbered by `stream:{tabId}`; `session-tabs:<sessionId>` lists the tabs of
 * each session. Needs Redis 6.2 or later (GETDEL, SET PXAT, ZADD GT).
 *
 * Each Lua script touches one hash slot, so every step that must be atomic is (a claim, a
 * restore code taken, a durable append, one link's change). A change that spans a link and its
 * session's or user's index is done in ordered steps instead, each idempotent, so that a step
 * that fails halfway (a shard gone) leaves only an extra index entry, which every reader checks
 * against the link and which goes when its link expires or moves on; the method then rejects
 * with STORE_UNAVAILABLE and its caller tries again.
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
  readonly #client: RedisLinkStoreClient
  readonly #cluster: boolean
  readonly #keys: RedisKeys
  readonly #timeoutMs: number
  #closed = false

  constructor(options: RedisLinkStoreOptions) {
    this.#client = options.client
    this.#cluster = isCluster(options.client)
    this.#keys = createRedisKeys(options.prefix ?? 'ss:')
    this.#timeoutMs = options.commandTimeoutMs ?? 2000
  }

  async getLink(tokenHash: string): Promise<LinkRecord | null> {
    const key = this.#keys.link(tokenHash)
    const reply = await this.#send(key, ['HMGET', key, 's', 'c', 'l', 'e', 'r', 'p', 'u', 'n', 'v'])
    const [s, c, l, e, r, p, u, n, v] = reply as Array<string | null>
    if (typeof s !== 'string') return null
    const record: LinkRecord = { sessionId: s, createdAt: toNumber(c), lastSeenAt: toNumber(l), expiresAt: toNumber(e) }
    if (typeof r === 'string') record.revokedAt = toNumber(r)
    if (typeof p === 'string') record.replacedAt = toNumber(p)
    if (typeof u === 'string') record.userId = u
    if (typeof n === 'string') record.successor = n
    if (typeof v === 'string') record.predecessor = v
    return record
  }

  /*
   * Indexes first, then the link, then the old indexes let go: a step that fails leaves an
   * extra index entry at worst, never a link its session's or user's index does not list
   * (which logout or endUser would miss).
   */
  async putLink(tokenHash: string, record: LinkRecord): Promise<void> {
    const expiresAt = String(record.expiresAt)
    const userId = record.userId ?? ''
    await Promise.all([
      this.#index(this.#keys.sessionLinks(record.sessionId), tokenHash, expiresAt),
      userId === '' ? undefined : this.#index(this.#keys.userLinks(userId), tokenHash, expiresAt),
    ])
    const key = this.#keys.link(tokenHash)
    const [oldSession, oldUser] = (await this.#eval(PUT_LINK, [key], [
      record.sessionId,
      String(record.createdAt),
      String(record.lastSeenAt),
      expiresAt,
      record.revokedAt === undefined ? '' : String(record.revokedAt),
      record.replacedAt === undefined ? '' : String(record.replacedAt),
      userId,
      record.successor ?? '',
      record.predecessor ?? '',
    ])) as [string, string]
    await Promise.all([
      oldSession !== '' && oldSession !== record.sessionId ? this.#unindex('session', oldSession, tokenHash) : undefined,
      oldUser !== '' && oldUser !== userId ? this.#unindex('user', oldUser, tokenHash) : undefined,
    ])
  }

  /* Same session: one script. A move: the new session's index, then the link, then the old index. */
  async touchLink(tokenHash: string, sessionId: string, lastSeenAt: number): Promise<void> {
    const key = this.#keys.link(tokenHash)
    const seen = await this.#eval(TOUCH_LINK, [key], [sessionId, String(lastSeenAt)])
    if (!Array.isArray(seen)) return
    const index = this.#keys.sessionLinks(sessionId)
    const expiresAt = String(seen[1])
    await this.#index(index, tokenHash, expiresAt)
    const moved = await this.#eval(MOVE_LINK, [key], [sessionId, String(lastSeenAt)])
    if (!Array.isArray(moved)) return
    const [from, nowExpiresAt] = moved.map(String) as [string, string]
    // Put again meanwhile with another expiry: the entry's score follows it (GT keeps the later).
    if (nowExpiresAt !== expiresAt) await this.#index(index, tokenHash, nowExpiresAt)
    if (from !== sessionId) await this.#unindex('session', from, tokenHash)
  }

  async revokeLink(tokenHash: string, revokedAt: number): Promise<void> {
    const key = this.#keys.link(tokenHash)
    await this.#eval(REVOKE_LINK, [key], [String(revokedAt)])
  }

  /*
   * Link by link, each revoked only if it still names the session: two revocations at once
   * revoke each link once (their counts add up), and a link that moved away is left alone.
   */
  async revokeSession(sessionId: string, revokedAt: number): Promise<number> {
    const hashes = await this.#indexed(this.#keys.sessionLinks(sessionId))
    const counts = await Promise.all(
      hashes.map((hash) => {
        const key = this.#keys.link(hash)
        return this.#eval(REVOKE_IF_IN, [key], [sessionId, String(revokedAt)])
      }),
    )
    return counts.reduce<number>((sum, n) => sum + toNumber(n), 0)
  }

  /* Per link: the new user's index, then the link, then the old user's index. */
  async setSessionUser(sessionId: string, userId: string | null): Promise<number> {
    const target = userId ?? ''
    const hashes = await this.#indexed(this.#keys.sessionLinks(sessionId))
    const changed = await Promise.all(
      hashes.map(async (hash) => {
        const [s, u, e] = await this.#linkFields(hash)
        if (s !== sessionId || (u ?? '') === target || e === null) return 0
        if (target !== '') await this.#index(this.#keys.userLinks(target), hash, e)
        const key = this.#keys.link(hash)
        const previous = await this.#eval(SET_LINK_USER, [key], [sessionId, target])
        if (typeof previous !== 'string') return 0
        if (previous !== '') await this.#unindex('user', previous, hash)
        return 1
      }),
    )
    return changed.reduce<number>((sum, n) => sum + n, 0)
  }

  async userSessions(userId: string, now: number): Promise<string[]> {
    const key = this.#keys.userLinks(userId)
    const hashes = (await this.#send(key, ['ZRANGEBYSCORE', key, `(${now}`, '+inf'])) as string[]
    const sessions = new Set<string>()
    await Promise.all(
      hashes.map(async (hash) => {
        const [s, u, e] = await this.#linkFields(hash)
        if (s !== null && u === userId && toNumber(e) > now) sessions.add(s)
      }),
    )
    return [...sessions]
  }

  async putRestoreCode(codeHash: string, record: RestoreCodeRecord): Promise<void> {
    const key = this.#keys.code(codeHash)
    const value = JSON.stringify({ sessionId: record.sessionId, expiresAt: record.expiresAt })
    await this.#send(key, ['SET', key, value, 'PXAT', String(record.expiresAt)])
  }

  async takeRestoreCode(codeHash: string, now: number): Promise<RestoreCodeRecord | null> {
    const key = this.#keys.code(codeHash)
    const value = await this.#send(key, ['GETDEL', key])
    if (typeof value !== 'string') return null
    const record = JSON.parse(value) as RestoreCodeRecord
    return record.expiresAt > now ? record : null
  }

  async claimCall(callKey: string, ttlMs: number, now: number, owner?: string): Promise<CallClaim> {
    const key = this.#keys.call(callKey)
    const value = await this.#eval(CLAIM_CALL, [key], [String(now), String(now + ttlMs), owner === undefined ? '' : ownerDigits(owner)])
    if (typeof value !== 'string') return { state: 'new' }
    const json = value.slice(value.indexOf('|') + 1)
    return json === '' ? { state: 'pending' } : { state: 'done', reply: JSON.parse(json) as CallReply }
  }

  async finishCall(callKey: string, reply: CallReply, ttlMs: number, now: number): Promise<void> {
    const key = this.#keys.call(callKey)
    const expiresAt = String(now + ttlMs)
    await this.#send(key, ['SET', key, `${expiresAt}|${JSON.stringify(reply)}`, 'PXAT', expiresAt])
  }

  async releaseCall(callKey: string): Promise<void> {
    const key = this.#keys.call(callKey)
    await this.#send(key, ['DEL', key])
  }

  /*
   * The tabs' streams first, then their sessions' tab lists: a durable send that finds a tab
   * listed then appends to the stream whose last seq this call answers, so the tab replays it.
   * (The other order would let such a send start the stream, and the tab would take that
   * event's seq for one it had seen.) On one Redis each step is one script for the whole batch;
   * on a cluster, one script per tab and per session, sent together (pipelined per node).
   */
  async recordTabs(tabs: readonly TabSeen[], now: number, windowMs: number): Promise<number[]> {
    if (tabs.length === 0) return []
    const head = [String(now + windowMs), String(now)]
    const tabGroups = this.#cluster ? tabs.map((tab) => [tab]) : [tabs]
    const streams = await Promise.all(
      tabGroups.map((group) =>
        this.#eval(RECORD_STREAMS, group.flatMap(({ tabId }) => [this.#keys.stream(tabId), this.#keys.events(tabId)]), [...head, String(streamBase(now))]),
      ),
    )
    const bySession = new Map<string, string[]>()
    for (const { sessionId, tabId } of tabs) {
      const ids = bySession.get(sessionId)
      if (ids) ids.push(tabId)
      else bySession.set(sessionId, [tabId])
    }
    const sessions = [...bySession]
    const sessionGroups = this.#cluster ? sessions.map((entry) => [entry]) : [sessions]
    await Promise.all(
      sessionGroups.map((group) =>
        this.#eval(
          RECORD_SESSION_TABS,
          group.map(([sessionId]) => this.#keys.sessionTabs(sessionId)),
          [...head, ...group.flatMap(([, ids]) => [String(ids.length), ...ids])],
        ),
      ),
    )
    return streams.flatMap((reply) => (reply as unknown[]).map(toNumber))
  }

  async sessionTabs(sessionId: string, now: number): Promise<string[]> {
    const key = this.#keys.sessionTabs(sessionId)
    const reply = await this.#send(key, ['ZRANGEBYSCORE', key, `(${now}`, '+inf'])
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
      [this.#keys.stream(tabId), this.#keys.events(tabId)],
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
      [this.#keys.stream(tabId), this.#keys.events(tabId)],
      [String(now), String(afterSeq)],
    )) as string[]
    if (reply.length === 0) return { lastSeq: 0, events: [], gap: afterSeq > 0 }
    const lastSeq = toNumber(reply[0])
    const events = reply.slice(1).map(toStoredEvent)
    // Stored seqs are distinct and at most lastSeq: fewer than lastSeq - afterSeq means one is gone.
    return { lastSeq, events, gap: afterSeq > lastSeq || (afterSeq < lastSeq && events.length !== lastSeq - afterSeq) }
  }

  async ackEvents(tabId: string, uptoSeq: number): Promise<void> {
    await this.#eval(ACK_EVENTS, [this.#keys.stream(tabId), this.#keys.events(tabId)], [String(uptoSeq)])
  }

  /**
   * Redis drops expired links, codes, results, tabs and event streams by itself, and every
   * index key with its latest entry; this drops the index entries whose link has expired (by
   * their score, no link read) from every session and user index, on every primary of a
   * cluster, and returns how many went.
   */
  async sweep(now: number): Promise<number> {
    if (this.#closed) return 0
    let count = 0
    for (const prefix of this.#keys.indexPrefixes) {
      for await (const key of this.#scan(`${globEscape(prefix)}*`)) {
        count += toNumber(await this.#send(key, ['ZREMRANGEBYSCORE', key, '-inf', String(now)]))
      }
    }
    debug('pruned %d session and user index entries', count)
    return count
  }

  /** Stops using the client; the client stays connected (it is yours). */
  async close(): Promise<void> {
    this.#closed = true
  }

  #index(key: string, tokenHash: string, expiresAt: string): Promise<unknown> {
    return this.#eval(INDEX, [key], [tokenHash, expiresAt])
  }

  /*
   * Drops the entry of a link that no longer names `id`, then reads the link: if it names `id`
   * again (moved back by a concurrent step between its move and this removal), the entry is put
   * back. Either way the index of the session or user the link names lists it.
   */
  async #unindex(kind: 'session' | 'user', id: string, tokenHash: string): Promise<void> {
    const key = kind === 'session' ? this.#keys.sessionLinks(id) : this.#keys.userLinks(id)
    await this.#eval(UNINDEX, [key], [tokenHash])
    const [s, u, e] = await this.#linkFields(tokenHash)
    if ((kind === 'session' ? s : u) === id && e !== null) await this.#index(key, tokenHash, e)
  }

  async #linkFields(tokenHash: string): Promise<LinkFields> {
    const key = this.#keys.link(tokenHash)
    return (await this.#send(key, ['HMGET', key, 's', 'u', 'e'])) as LinkFields
  }

  /** Every entry of an index, expired ones included (their links are gone or about to go). */
  async #indexed(key: string): Promise<string[]> {
    return (await this.#send(key, ['ZRANGE', key, '0', '-1'])) as string[]
  }

  /** The keys matching `pattern` on one Redis, or on every primary of a cluster. */
  async *#scan(pattern: string): AsyncGenerator<string> {
    const nodes: Array<{ sendCommand(args: string[]): Promise<unknown> }> = []
    if (isCluster(this.#client)) {
      const cluster = this.#client
      for (const master of cluster.masters) nodes.push(await this.#bounded(() => cluster.nodeClient(master as never), 'connect'))
    } else {
      nodes.push(this.#client)
    }
    for (const node of nodes) {
      let cursor = '0'
      do {
        const reply = (await this.#bounded(() => node.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '200']), 'SCAN')) as [string, string[]]
        cursor = String(reply[0])
        yield* reply[1]
      } while (cursor !== '0')
    }
  }

  /*
   * Runs a script by SHA and sends its source only when Redis does not know it (first use, or
   * after a restart emptied the script cache). Its first key routes it on a cluster.
   */
  async #eval(s: Script, keys: string[], args: string[]): Promise<unknown> {
    const tail = [String(keys.length), ...keys, ...args]
    try {
      return await this.#send(keys[0], ['EVALSHA', s.sha, ...tail])
    } catch (err) {
      if (err instanceof ErrorReply && err.message.startsWith('NOSCRIPT')) {
        return this.#send(keys[0], ['EVAL', s.source, ...tail])
      }
      throw err
    }
  }

  /* Sends one command, routed by `key` on a cluster (to the primary of its slot). */
  #send(key: string | undefined, args: string[]): Promise<unknown> {
    const client = this.#client
    return this.#bounded(
      (abortSignal) => (isCluster(client) ? client.sendCommand(key, false, args, { abortSignal }) : (client as SingleClient).sendCommand(args, { abortSignal })),
      args[0] ?? 'command',
    )
  }

  /*
   * Refuses at once while the client is not ready, so a client created without
   * `disableOfflineQueue` does not queue our commands until Redis is back, and gives up after
   * `commandTimeoutMs` when Redis holds the connection open but does not answer.
   */
  async #bounded<T>(send: (signal: AbortSignal) => Promise<T>, what: string): Promise<T> {
    // Closed by a shutdown in progress: retryable, a client reconnecting now gets another node or this one restarted.
    if (this.#closed) throw new SessionSocketError('STORE_UNAVAILABLE', 'link store closed', { retryAfter: 1000 })
    if (!this.#client.isReady) throw unavailable(new Error('redis client is not ready'))
    // A command given up on is also taken out of node-redis's queue if it was not written yet:
    // sent after its caller was told STORE_UNAVAILABLE, a claim would hold the call for its lease.
    const abandoned = new AbortController()
    const sent = send(abandoned.signal)
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abandoned.abort()
        reject(unavailable(new Error(`redis did not answer within ${this.#timeoutMs} ms`)))
      }, this.#timeoutMs)
    })
    try {
      return await Promise.race([sent, timeout])
    } catch (err) {
      sent.catch(() => {})
      const converted = toError(err)
      if (converted instanceof SessionSocketError) debug('%s failed: %O', what, err)
      throw converted
    } finally {
      clearTimeout(timer)
    }
  }
}
