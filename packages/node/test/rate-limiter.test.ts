import { afterEach, describe, expect, it } from 'vitest'
import { MemoryStore } from 'express-session'
import { MemoryLinkStore } from '@session-socket/node'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { rawEngineRegister, type RawEngineResult } from './helpers/raw-client.js'

// Per-address limits as users behind one address (an office or carrier-grade NAT) meet them.

let server: TestServer | undefined
const open: RawEngineResult[] = []

afterEach(async () => {
  for (const client of open.splice(0)) client.close()
  await server?.close()
  server = undefined
})

function keep(result: RawEngineResult): RawEngineResult {
  open.push(result)
  return result
}

/** One browser profile of raw tabs: the first registers without a token and gets the cookie. */
interface Profile {
  token: string
  cookie: string
}

async function firstVisit(url: string, tabId: string, localAddress?: string): Promise<Profile> {
  const first = keep(await rawEngineRegister(url, { token: null, tabId }, localAddress ? { localAddress } : {}))
  expect(first.reply).toBeDefined()
  return { token: first.reply!.token, cookie: first.setCookie.join('; ') }
}

describe('per-address limits behind a NAT', () => {
  it('should answer any number of unknown tokens from one address, and still admit a valid token and a new visitor there', async () => {
    server = await startTestServer()
    const profile = await firstVisit(server.url, 'valid-tab')
    for (let i = 0; i < 60; i++) {
      const guess = keep(await rawEngineRegister(server.url, { token: `guess${String(i).padStart(27, '0')}`, tabId: `g${i}` }))
      expect(guess.reply).toMatchObject({ reason: 'unknown-token' })
    }
    const valid = keep(await rawEngineRegister(server.url, { token: profile.token, tabId: 'valid-tab' }, { cookie: profile.cookie }))
    expect(valid.reply).toMatchObject({ restored: true, reason: null })
    const visitor = keep(await rawEngineRegister(server.url, { token: null, tabId: 'visitor' }))
    expect(visitor.reply).toMatchObject({ reason: 'no-token', newSession: true })
  })

  it('should bring 1,000 tabs of one address back to ready after a restart that forgot every link', async () => {
    const sessionStore = new MemoryStore()
    server = await startTestServer({ sessionStore })
    // 200 browsers behind one address, 5 tabs each: the first tab makes the session, the others join it.
    const profiles = await Promise.all(Array.from({ length: 200 }, (_, b) => firstVisit(server!.url, `b${b}t0`)))
    const tabs = profiles.flatMap((profile, b) => Array.from({ length: 5 }, (_, t) => ({ profile, tabId: `b${b}t${t}` })))
    const before = await Promise.all(tabs.filter(({ tabId }) => !tabId.endsWith('t0')).map(({ profile, tabId }) =>
      rawEngineRegister(server!.url, { token: profile.token, tabId }, { cookie: profile.cookie }).then(keep),
    ))
    expect(before.every((r) => r.reply?.restored === true)).toBe(true)

    // The process restarts: the memory link store forgot every token; the sessions live on.
    for (const client of open.splice(0)) client.close()
    await server.close()
    server = await startTestServer({ sessionStore, links: new MemoryLinkStore() })
    const started = Date.now()
    const storm = await Promise.all([
      ...tabs.map(({ profile, tabId }) => rawEngineRegister(server!.url, { token: profile.token, tabId }, { cookie: profile.cookie, timeout: 20_000 }).then(keep)),
      // And new visitors arrive at the same moment.
      ...Array.from({ length: 50 }, (_, i) => rawEngineRegister(server!.url, { token: null, tabId: `new${i}` }, { timeout: 20_000 }).then(keep)),
    ])
    const elapsed = Date.now() - started
    expect(storm.filter((r) => r.refused)).toEqual([])
    const back = storm.slice(0, 1000).map((r) => r.reply!)
    // Every tab is back in its own browser's session (the cookie's), with a fresh token.
    expect(back.every((reply) => reply.reason === 'unknown-token' && !reply.newSession)).toBe(true)
    expect(storm.slice(1000).every((r) => r.reply?.newSession === true)).toBe(true)
    expect(elapsed).toBeLessThan(15_000)
  }, 60_000)

  it('should count each source address for itself', async () => {
    server = await startTestServer({ ss: { rateLimits: { handshakesPerIp: { limit: 3, windowMs: 60_000 } } } })
    for (let i = 0; i < 3; i++) expect(keep(await rawEngineRegister(server.url, { token: null, tabId: `a${i}` })).reply).toBeDefined()
    const limited = keep(await rawEngineRegister(server.url, { token: null, tabId: 'a3' }))
    expect(limited.refused).toMatchObject({ code: 'RATE_LIMITED' })
    expect(limited.refused!.retryAfter).toBeGreaterThan(50_000)
    const other = keep(await rawEngineRegister(server.url, { token: null, tabId: 'b0' }, { localAddress: '127.0.0.2' }))
    expect(other.reply).toMatchObject({ newSession: true })
  })

  it('should bound new sessions per address, never a valid token, and count another address apart', async () => {
    server = await startTestServer({ ss: { rateLimits: { newSessionsPerIp: { limit: 2, windowMs: 60_000 } } } })
    const profile = await firstVisit(server.url, 'kept')
    expect(keep(await rawEngineRegister(server.url, { token: null, tabId: 'second' })).reply).toMatchObject({ newSession: true })
    const third = keep(await rawEngineRegister(server.url, { token: null, tabId: 'third' }))
    expect(third.refused).toMatchObject({ code: 'RATE_LIMITED' })
    expect(third.refused!.retryAfter).toBeGreaterThan(50_000)
    // Refused before anything was written: no link, no session for it.
    expect(await new Promise((resolve) => server!.sessionStore.length!((_err, n) => resolve(n)))).toBe(2)
    // The address is over its budget of new sessions; a tab with a valid token is not a new session.
    const valid = keep(await rawEngineRegister(server.url, { token: profile.token, tabId: 'kept' }, { cookie: profile.cookie }))
    expect(valid.reply).toMatchObject({ restored: true })
    // Nor is an unknown token that comes with a live cookie: it joins the cookie's session.
    const forgotten = keep(await rawEngineRegister(server.url, { token: 'f'.repeat(32), tabId: 'kept2' }, { cookie: profile.cookie }))
    expect(forgotten.reply).toMatchObject({ reason: 'unknown-token', newSession: false })
    const elsewhere = keep(await rawEngineRegister(server.url, { token: null, tabId: 'elsewhere' }, { localAddress: '127.0.0.2' }))
    expect(elsewhere.reply).toMatchObject({ newSession: true })
  })
})
