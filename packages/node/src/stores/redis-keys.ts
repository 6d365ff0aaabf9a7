/**
 * Where `RedisLinkStore` keeps each thing, under one prefix. Every Lua script touches the keys
 * of one hash slot: most keys stand alone, and the two keys of one tab's durable stream share
 * the hash tag `{tabId}`. (A prefix holding a tag of its own, such as `{ss}:`, puts every key in
 * one slot: still correct, but not sharded.)
 *
 * | key | type | holds |
 * |---|---|---|
 * | `link:<token hash>` | hash | a `LinkRecord` (`s`ession, `c`reated, `l`ast seen, `e`xpires, `r`evoked, re`p`laced, `u`ser) |
 * | `session-links:<sessionId>` | sorted set | hashes of the session's links, scored by their expiresAt |
 * | `user-links:<userId>` | sorted set | hashes of the links naming the user, scored by their expiresAt |
 * | `code:<code hash>` | string | a restore code (JSON) |
 * | `call:<tabId>:<callId>` | string | a call claim or result (`<expiresAt>\|<reply JSON>`) |
 * | `session-tabs:<sessionId>` | sorted set | the session's tabs, scored by seen-until |
 * | `stream:{<tabId>}` | hash | the tab's durable stream: last seq, bytes held, expiry |
 * | `events:{<tabId>}` | sorted set | the tab's durable events, scored by seq |
 *
 * @example
 * const keys = createRedisKeys('ss:')
 * keys.stream('t1') // 'ss:stream:{t1}', in the slot of 'ss:events:{t1}'
 */
export function createRedisKeys(prefix: string) {
  return {
    link: (tokenHash: string) => `${prefix}link:${tokenHash}`,
    sessionLinks: (sessionId: string) => `${prefix}session-links:${sessionId}`,
    userLinks: (userId: string) => `${prefix}user-links:${userId}`,
    code: (codeHash: string) => `${prefix}code:${codeHash}`,
    call: (key: string) => `${prefix}call:${key}`,
    sessionTabs: (sessionId: string) => `${prefix}session-tabs:${sessionId}`,
    stream: (tabId: string) => `${prefix}stream:{${tabId}}`,
    events: (tabId: string) => `${prefix}events:{${tabId}}`,
    /** What sweep scans for: the index keys, by the prefix before the id. */
    indexPrefixes: [`${prefix}session-links:`, `${prefix}user-links:`] as const,
  }
}

/**
 * The key names of one `RedisLinkStore`.
 *
 * @example
 * const keys: RedisKeys = createRedisKeys('ss:')
 */
export type RedisKeys = ReturnType<typeof createRedisKeys>
