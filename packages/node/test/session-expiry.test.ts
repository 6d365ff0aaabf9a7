import { afterEach, describe, expect, it } from 'vitest'
import type { SessionData, Store } from 'express-session'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { rawRegister, type RawClient } from './helpers/raw-client.js'

let server: TestServer | undefined
const raws: RawClient[] = []

afterEach(async () => {
  for (const raw of raws.splice(0)) raw.close()
  await server?.close()
  server = undefined
})

const stored = (store: Store, sid: string) => new Promise<SessionData | null>((resolve, reject) => store.get(sid, (err, data) => (err ? reject(err) : resolve(data ?? null))))

/** Counts the session-store reads from now on. */
function countReads(store: Store): { readonly count: number } {
  const get = store.get.bind(store)
  const counter = { count: 0 }
  store.get = (sid, callback) => {
    counter.count++
    get(sid, callback)
  }
  return counter
}

async function register(tabId: string): Promise<{ raw: RawClient; sessionId: string }> {
  const raw = await rawRegister(server!.url, { token: null, tabId })
  raws.push(raw)
  const whoami = (await raw.socket.emitWithAck('ss:call', { id: 'whoami', m: 'whoami' })) as { r: { sessionId: string } }
  return { raw, sessionId: whoami.r.sessionId }
}

const ping = (raw: RawClient, id: string) => raw.socket.emitWithAck('ss:call', { id, m: 'ping' })

describe('session expiry on calls without the session', () => {
  it('should answer a { session: false } call SESSION_ENDED and end the tab once the session expired in the store', async () => {
    server = await startTestServer({
      session: { cookie: { maxAge: 300 } },
      setup: (ss) => ss.method('ping', () => 'pong', { session: false }),
    })
    const { raw, sessionId } = await register('expiry-tab')
    expect(await ping(raw, 'c1')).toEqual({ ok: true, r: 'pong' })
    // The store forgets the session at its cookie's expiry (no periodic check runs here).
    await expect.poll(() => stored(server!.sessionStore, sessionId), { timeout: 3000, interval: 50 }).toBeNull()
    const ended = new Promise((resolve) => raw.socket.once('ss:ended', resolve))
    expect(await ping(raw, 'c2')).toMatchObject({ ok: false, e: { code: 'SESSION_ENDED' } })
    expect(await ended).toEqual({ reason: 'expired' })
  })

  it('should not read the session store for { session: false } calls until the expiry the socket knows has passed, then learn the new one', async () => {
    let offset = 0
    server = await startTestServer({
      session: { cookie: { maxAge: 60_000 } },
      ss: { now: () => Date.now() + offset },
      setup: (ss) => ss.method('ping', () => 'pong', { session: false }),
    })
    const { raw, sessionId } = await register('reads-tab')
    const reads = countReads(server.sessionStore)
    for (let i = 0; i < 50; i++) expect(await ping(raw, `c${i}`)).toEqual({ ok: true, r: 'pong' })
    expect(reads.count).toBe(0)

    // Another request extended the session meanwhile (a touch writes a later expiry).
    const data = (await stored(server.sessionStore, sessionId))!
    const later = new Date(Date.now() + 600_000)
    await new Promise<void>((resolve, reject) => server!.sessionStore.set(sessionId, { ...data, cookie: { ...data.cookie, expires: later } } as SessionData, (err) => (err ? reject(err) : resolve())))
    const before = reads.count
    // Past the expiry the socket read at register: the store is asked once, says alive and when it expires now.
    offset = 61_000
    expect(await ping(raw, 'd1')).toEqual({ ok: true, r: 'pong' })
    expect(reads.count).toBe(before + 1)
    for (let i = 2; i < 20; i++) expect(await ping(raw, `d${i}`)).toEqual({ ok: true, r: 'pong' })
    expect(reads.count).toBe(before + 1)
  })
})
