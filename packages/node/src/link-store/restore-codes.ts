/**
 * A one-time restore code, bound to one session.
 *
 * @example
 * const record: RestoreCodeRecord = { sessionId: req.sessionID, expiresAt: Date.now() + 60_000 }
 */
export interface RestoreCodeRecord {
  sessionId: string
  expiresAt: number
}

/**
 * One-time restore codes: the tab trades one over HTTP for its session cookie.
 *
 * Contract (`test/stores/contract.ts`, "restore codes"): `takeRestoreCode` is atomic, of two
 * concurrent takes of one code exactly one gets it, and it never returns an expired code.
 *
 * @example
 * await codes.putRestoreCode(hashSecret(code), { sessionId, expiresAt: Date.now() + 60_000 })
 * const taken = await codes.takeRestoreCode(hashSecret(code), Date.now()) // null the second time
 */
export interface RestoreCodes {
  putRestoreCode(codeHash: string, record: RestoreCodeRecord): Promise<void>
  /** Returns and deletes the code in one step; null if unknown, taken or expired. */
  takeRestoreCode(codeHash: string, now: number): Promise<RestoreCodeRecord | null>
}
