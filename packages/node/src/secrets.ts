import { createHash } from 'node:crypto'
import { nanoid } from 'nanoid'

/** Mints a link token or restore code: 32 URL-safe characters, 192 random bits. */
export function mintSecret(): string {
  return nanoid(32)
}

/**
 * What the stores keep instead of a secret: SHA-256 in base64url. Stores look records up
 * by this hash, so no secret is ever compared character by character.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url')
}
