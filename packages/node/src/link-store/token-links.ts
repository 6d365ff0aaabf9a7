/**
 * What the server keeps for one link token. The token itself is never stored: records
 * are keyed by `sha256(token)` in base64url (see `hashSecret`).
 *
 * @example
 * const record: LinkRecord = { sessionId: req.sessionID, createdAt: now, lastSeenAt: now, expiresAt: now + 30 * 86_400_000 }
 */
export interface LinkRecord {
  /** The express-session id the token is linked to. */
  sessionId: string
  /** When the token was minted (ms since epoch). */
  createdAt: number
  /** Last successful register with this token (ms since epoch). */
  lastSeenAt: number
  /** Absolute expiry (ms since epoch): the token is refused after this, whatever its use. */
  expiresAt: number
  /** Set when the token was revoked (logout, session destroyed); kept until `expiresAt` so the reason can be told. */
  revokedAt?: number
  /**
   * Set when rotation replaced this token by a successor (ms since epoch). It is still accepted
   * within the rotation grace window (tabs racing the rotation); presented later, it is reuse if
   * its successor has been used, and is rotated again if not (the client never got the reply).
   */
  replacedAt?: number
  /** The hash of the token rotation last gave in exchange for this one (see `replacedAt`). */
  successor?: string
  /** The hash of the token this one was given in exchange for, when rotation minted it. */
  predecessor?: string
  /**
   * The user of the session as `identify` last named it, so that `endUser` reaches the session
   * even when none of its tabs is connected. Absent when unknown or anonymous.
   */
  userId?: string
}

/**
 * Token links and the index of each session's and each user's links.
 *
 * Contract (`test/stores/contract.ts`, "links" and "users"):
 * - `getLink` returns the record as stored, revoked or past `expiresAt` included, or null
 *   when never stored or already swept. Callers decide what an expired record means.
 * - `revokeSession` and `setSessionUser` act on every link of the session at once.
 * - `touchLink` keeps a link's `userId`; `userSessions` follows the link to its new session.
 *
 * @example
 * const hash = hashSecret(token)
 * const record = await links.getLink(hash)
 * if (record && record.revokedAt === undefined && record.expiresAt > Date.now()) await links.touchLink(hash, record.sessionId, Date.now())
 */
export interface TokenLinks {
  getLink(tokenHash: string): Promise<LinkRecord | null>
  /** Stores a new link (overwrites a record with the same hash). */
  putLink(tokenHash: string, record: LinkRecord): Promise<void>
  /** Points one token at another session and records `lastSeenAt`. No-op if unknown. */
  touchLink(tokenHash: string, sessionId: string, lastSeenAt: number): Promise<void>
  /** Marks one token revoked. No-op if unknown. */
  revokeLink(tokenHash: string, revokedAt: number): Promise<void>
  /** Marks every live token of the session revoked; returns how many. */
  revokeSession(sessionId: string, revokedAt: number): Promise<number>
  /**
   * Names the user of every link of the session, revoked ones included (`null`: no user);
   * returns how many links changed.
   */
  setSessionUser(sessionId: string, userId: string | null): Promise<number>
  /**
   * The sessions that have an unexpired link (`expiresAt > now`) naming this user, each once.
   * Revoked links count: their session may still be alive over HTTP.
   */
  userSessions(userId: string, now: number): Promise<string[]>
}
