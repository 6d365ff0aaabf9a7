import type { LinkStore } from './link-store.js'
import { hashSecret } from './secrets.js'

/** Where a sign-in left a session, as register reads it. */
export interface Regeneration {
  /** The session `session.regenerate()` made. */
  toId: string
  /** When the regenerate happened (ms since epoch). */
  at: number
}

/**
 * The link-store key of a regenerated session's mark. Tokens are hashed the same way, but no
 * token can hash to it: a token is URL-safe characters only, and this name has a colon.
 */
function markKey(sessionId: string): string {
  return hashSecret(`regenerated:${sessionId}`)
}

/**
 * Remembers, in the link store (so every node sees it), that `fromId` was replaced by `toId`
 * through `session.regenerate()` at `at`, for `window` ms. The mark is a link record that can
 * never be used as a token: revoked from the start, under a key no token hashes to, swept at
 * its `expiresAt` as every link is.
 *
 * @example
 * await markRegenerated(links, req.sessionID, newId, Date.now(), 10_000)
 */
export async function markRegenerated(links: LinkStore, fromId: string, toId: string, at: number, window: number): Promise<void> {
  await links.putLink(markKey(fromId), { sessionId: toId, createdAt: at, lastSeenAt: at, expiresAt: at + window, revokedAt: at })
}

/**
 * The sign-in that replaced `sessionId`, if it happened less than its window ago.
 *
 * @example
 * const regeneration = await regeneratedFrom(links, record.sessionId, Date.now())
 * if (regeneration) throw new SessionSocketError('SIGN_IN_PENDING', 'retry', { retryAfter: signInRetryAfter(regeneration, now) })
 */
export async function regeneratedFrom(links: LinkStore, sessionId: string, now: number): Promise<Regeneration | null> {
  const mark = await links.getLink(markKey(sessionId))
  return mark && mark.expiresAt > now ? { toId: mark.sessionId, at: mark.createdAt } : null
}

/**
 * How long a tab waits before it connects again while a sign-in's cookie is on its way: 200 ms
 * for the first 2 s after the regenerate (the response is normally stored by then), then 1 s,
 * so a tab that never gets the cookie makes about 20 attempts over a 10 s window.
 *
 * @example
 * signInRetryAfter({ toId, at: now - 500 }, now) // 200
 */
export function signInRetryAfter(regeneration: Regeneration, now: number): number {
  return now - regeneration.at < 2_000 ? 200 : 1_000
}
