import { describe, expect, it } from 'vitest'
import { memoryTokenStorage, type Logger, type TokenStorage } from '@session-socket/browser'
import { createLinkToken } from '../src/link-token.js'
import { fakeLocks } from './helpers/fake-locks.js'
import { sleep } from './helpers/fake-page.js'

function recordingLog() {
  const lines: string[] = []
  const log: Logger = (level, message) => lines.push(`${level}: ${message}`)
  return { lines, log }
}

const failing = (): TokenStorage => ({
  get: () => Promise.reject(new Error('storage is blocked')),
  set: () => Promise.reject(new Error('storage is blocked')),
  delete: () => Promise.reject(new Error('storage is blocked')),
})

describe('createLinkToken', () => {
  it('should read the stored token without taking the mint lock', async () => {
    const locks = fakeLocks()
    const token = createLinkToken(memoryTokenStorage('stored'), locks, () => {})
    expect(await token.read()).toBe('stored')
    expect(locks.held.size).toBe(0)
  })

  it('should let a second tab without a token wait for the first one and register with the token it stored', async () => {
    const storage = memoryTokenStorage()
    const locks = fakeLocks()
    const first = createLinkToken(storage, locks, () => {})
    const second = createLinkToken(storage, locks, () => {})
    expect(await first.read()).toBeNull()
    expect(locks.held.has('session-socket:mint')).toBe(true)
    let secondRead: string | null | undefined
    const reading = second.read().then((value) => (secondRead = value))
    // The first tab's register reply has not come: the second still waits.
    await sleep(20)
    expect(secondRead).toBeUndefined()
    await first.store('minted-by-first')
    await reading
    expect(secondRead).toBe('minted-by-first')
  })

  it('should let go of the mint lock after its timeout when no register reply comes', async () => {
    const locks = fakeLocks()
    const token = createLinkToken(memoryTokenStorage(), locks, () => {}, 30)
    await token.read()
    expect(locks.held.has('session-socket:mint')).toBe(true)
    await expect.poll(() => locks.held.has('session-socket:mint')).toBe(false)
  })

  it('should let go of the mint lock on release, and take it again on the next read', async () => {
    const locks = fakeLocks()
    const token = createLinkToken(memoryTokenStorage(), locks, () => {})
    await token.read()
    token.release()
    await expect.poll(() => locks.held.has('session-socket:mint')).toBe(false)
    await token.read()
    expect(locks.held.has('session-socket:mint')).toBe(true)
    token.release()
  })

  it('should not wait for the mint lock it already holds (a reconnect before the register reply)', async () => {
    const locks = fakeLocks()
    const token = createLinkToken(memoryTokenStorage(), locks, () => {})
    await token.read()
    // A second wait for the same lock would never end: the test would time out.
    expect(await token.read()).toBeNull()
    token.release()
  })

  it('should read again, with a warning, when the Web Locks request fails', async () => {
    const { lines, log } = recordingLog()
    const storage = memoryTokenStorage()
    const locks = {
      request: () => {
        // Another tab stores a token meanwhile; the failed request reads it anyway.
        void storage.set('stored-meanwhile')
        return Promise.reject(new Error('locks are disabled'))
      },
    }
    const token = createLinkToken(storage, locks, log)
    expect(await token.read()).toBe('stored-meanwhile')
    expect(lines).toEqual(['warn: Web Locks request failed'])
  })

  it('should register without a token, with a warning, when storage fails', async () => {
    const { lines, log } = recordingLog()
    const token = createLinkToken(failing(), null, log)
    expect(await token.read()).toBeNull()
    expect(lines).toEqual(['warn: token storage failed; registering without a token'])
  })

  it('should store a new token, and not write the one storage already has', async () => {
    const writes: string[] = []
    const memory = memoryTokenStorage('same')
    const token = createLinkToken({ ...memory, set: (value) => (writes.push(value), memory.set(value)) }, null, () => {})
    await token.store('same')
    await token.store('new')
    expect(writes).toEqual(['new'])
    expect(await memory.get()).toBe('new')
  })

  it('should let go of the mint lock even when storing fails', async () => {
    const { lines, log } = recordingLog()
    const locks = fakeLocks()
    const storage = memoryTokenStorage()
    const token = createLinkToken({ ...storage, set: () => Promise.reject(new Error('quota')) }, locks, log)
    await token.read()
    await token.store('minted')
    await expect.poll(() => locks.held.has('session-socket:mint')).toBe(false)
    expect(lines).toEqual(['warn: could not store the link token'])
  })

  it('should forget the token', async () => {
    const storage = memoryTokenStorage('revoked')
    createLinkToken(storage, null, () => {}).forget()
    await expect.poll(() => storage.get()).toBeNull()
  })

  it('should forget nothing, and reject nothing unhandled, when storage fails', async () => {
    createLinkToken(failing(), null, () => {}).forget()
    // An unhandled rejection would fail the test run.
    await sleep(0)
  })
})
