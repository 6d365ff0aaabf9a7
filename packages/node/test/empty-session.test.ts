import { afterEach, describe, expect, it, vi } from 'vitest'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { rawEngineRegister, type RawEngineResult } from './helpers/raw-client.js'

// What a session a socket's handshake created costs the session store while nothing is in it.

let server: TestServer | undefined
const open: RawEngineResult[] = []

afterEach(async () => {
  for (const client of open.splice(0)) client.close()
  await server?.close()
  server = undefined
})

const HOUR = 3_600_000
const TWO_WEEKS = 14 * 24 * HOUR

async function visit(): Promise<{ cookie: string; sessionId: string }> {
  const tab = await rawEngineRegister(server!.url, { token: null, tabId: 't' })
  open.push(tab)
  expect(tab.reply).toMatchObject({ newSession: true })
  const cookie = tab.setCookie.join('; ')
  return { cookie, sessionId: decodeURIComponent(cookie).split('s:')[1]!.split('.')[0]! }
}

/** When the store will forget the session (ms since epoch; Infinity: never), or null if it has already. */
function storedUntil(sessionId: string): Promise<number | null> {
  return new Promise((resolve, reject) =>
    server!.sessionStore.get(sessionId, (err, data) => {
      if (err) return reject(err)
      if (!data) return resolve(null)
      resolve(data.cookie.expires ? new Date(data.cookie.expires).getTime() : Infinity)
    }),
  )
}

describe('empty sessions made by a handshake', () => {
  it('should be kept by the store for an hour, not for the cookie lifetime, while nothing is in them', async () => {
    server = await startTestServer({ session: { cookie: { maxAge: TWO_WEEKS } } })
    const { sessionId } = await visit()
    const until = (await storedUntil(sessionId))!
    expect(until).toBeGreaterThan(Date.now() + HOUR - 60_000)
    expect(until).toBeLessThanOrEqual(Date.now() + HOUR)
  })

  it('should leave the browser cookie as the app set it, and get the full lifetime back at the first HTTP request', async () => {
    server = await startTestServer({ session: { cookie: { maxAge: TWO_WEEKS } } })
    const tab = await rawEngineRegister(server.url, { token: null, tabId: 't' })
    open.push(tab)
    const cookie = tab.setCookie.join('; ')
    const sessionId = decodeURIComponent(cookie).split('s:')[1]!.split('.')[0]!
    const response = await fetch(`${server.url}/whoami`, { headers: { Cookie: cookie } })
    expect(((await response.json()) as { sessionId: string }).sessionId).toBe(sessionId)
    expect((await storedUntil(sessionId))!).toBeGreaterThan(Date.now() + TWO_WEEKS - 60_000)
  })

  it('should vanish on its own when nobody comes back, and a session with data in it should not', async () => {
    server = await startTestServer({ ss: { emptySessionTtl: 300 } })
    const abandoned = await visit()
    const used = await visit()
    await fetch(`${server.url}/count`, { method: 'POST', headers: { Cookie: used.cookie } })
    for (const client of open.splice(0)) client.close()
    await vi.waitFor(async () => expect(await storedUntil(abandoned.sessionId)).toBeNull(), { timeout: 3_000 })
    expect(await storedUntil(used.sessionId)).toBe(Infinity)
  })

  it('should be kept alive while one of its tabs is connected', async () => {
    server = await startTestServer({ ss: { emptySessionTtl: 400, sessionCheckInterval: 50 } })
    const { sessionId } = await visit()
    const first = (await storedUntil(sessionId))!
    // Touched again and again, past several of its short lifetimes, and its tab never ended.
    await vi.waitFor(async () => expect(await storedUntil(sessionId)).toBeGreaterThan(first + 1_200), { timeout: 5_000, interval: 100 })
    expect(open[0]!.events.map(([event]) => event)).not.toContain('ss:ended')
  })

  it('should keep its cookie lifetime with emptySessionTtl 0', async () => {
    server = await startTestServer({ session: { cookie: { maxAge: TWO_WEEKS } }, ss: { emptySessionTtl: 0 } })
    const { sessionId } = await visit()
    expect((await storedUntil(sessionId))!).toBeGreaterThan(Date.now() + TWO_WEEKS - 60_000)
  })
})
