import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createSessionSocket, memoryTabIdStorage, memoryTokenStorage, type SessionSocket } from '@session-socket/browser'
import type { DemoMethods } from '../server/api-types.js'
import { createDemoServer, type DemoServer } from '../server/app.js'
import { readConfig } from '../server/config.js'
import { openStores, type DemoStores } from '../server/stores.js'
import { startRedis, type RedisServer } from '../../test-helpers/redis-server.js'

let dataDir: string | undefined
let stores: DemoStores | undefined
let server: DemoServer | undefined
const clients: SessionSocket<any>[] = []

afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  await server?.close()
  await stores?.close()
  if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  server = stores = dataDir = undefined
})

async function start(env: Record<string, string> = { SS_TEST: '1' }): Promise<string> {
  dataDir = mkdtempSync(path.join(tmpdir(), 'ss-demo-app-'))
  const config = readConfig({ DATA_DIR: dataDir, PORT: '0', SESSION_SECRETS: 'test-secret', ...env })
  stores = await openStores(config)
  server = createDemoServer(config, stores)
  return server.listen()
}

/** POST /login as a form; returns the session cookie (`name=value`). */
async function signIn(url: string, name: string): Promise<string> {
  const response = await fetch(`${url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ name }),
  })
  expect(response.status).toBe(303)
  const cookie = response.headers.getSetCookie()[0]
  expect(cookie).toMatch(/^demo\.sid=.+; Path=\/; Expires=.+; HttpOnly; SameSite=Lax$/)
  return cookie!.split(';')[0]!
}

const postCounter = (url: string, cookie?: string) =>
  fetch(`${url}/api/counter`, { method: 'POST', headers: cookie ? { cookie, Accept: 'application/json' } : { Accept: 'application/json' } })

const testSession = async (url: string, cookie: string) =>
  (await (await fetch(`${url}/__test/session`, { headers: { cookie } })).json()) as { sessionId: string | null; count: number; userId: string | null }

/** A tab in Node: the session cookie rides on the WebSocket handshake. */
function openTab(url: string, cookie: string): SessionSocket<DemoMethods> {
  const client = createSessionSocket<DemoMethods>({
    url,
    tokenStorage: memoryTokenStorage(),
    tabIdStorage: memoryTabIdStorage(),
    page: null,
    locks: null,
    socketOptions: { transports: ['websocket'], extraHeaders: { cookie } },
  })
  clients.push(client)
  return client
}

const nextEnded = (client: SessionSocket<any>) => new Promise<string>((resolve) => client.on('ended', resolve))

describe('demo server', () => {
  it('should answer 401 NO_SESSION to an HTTP counter without a session, not count in a fresh one', async () => {
    const url = await start()
    const response = await postCounter(url)
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ error: { code: 'NO_SESSION' } })
    expect(response.headers.getSetCookie()).toEqual([])
  })

  it('should count one session over HTTP and over RPC', async () => {
    const url = await start()
    const cookie = await signIn(url, 'Ada')
    expect(await (await postCounter(url, cookie)).json()).toEqual({ count: 1 })
    const tab = openTab(url, cookie)
    expect(await tab.call('counter.increment')).toEqual({ count: 2 })
    expect(await (await postCounter(url, cookie)).json()).toEqual({ count: 3 })
    const session = await testSession(url, cookie)
    expect(session).toMatchObject({ count: 3, userId: 'ada' })
    expect((await tab.call('test.whoami')).sessionId).toBe(session.sessionId)
    expect(await tab.call('app.state')).toEqual({ user: { id: 'ada', name: 'Ada' }, count: 3, test: true })
  })

  it('should lose no increment when HTTP and RPC count at the same time', async () => {
    const url = await start()
    const cookie = await signIn(url, 'Ada')
    const [first, second] = [openTab(url, cookie), openTab(url, cookie)]
    await Promise.all(
      Array.from({ length: 10 }, () => [postCounter(url, cookie), first.call('counter.increment'), second.call('counter.increment')]).flat(),
    )
    expect((await testSession(url, cookie)).count).toBe(30)
  })

  it('should tell every tab of the session about a counter change and the live tabs', async () => {
    const url = await start()
    const cookie = await signIn(url, 'Ada')
    const first = openTab(url, cookie)
    await first.call('app.state')
    const tabs = new Promise<unknown[]>((resolve) => first.on('tabs', (list: unknown[]) => list.length === 2 && resolve(list)))
    const second = openTab(url, cookie)
    await second.call('app.state')
    expect(await tabs).toEqual(expect.arrayContaining([expect.objectContaining({ tabId: first.tabId }), expect.objectContaining({ tabId: second.tabId })]))
    const counted = new Promise((resolve) => first.on('counter', resolve))
    await second.call('counter.increment')
    expect(await counted).toEqual({ count: 1, via: 'rpc', tabId: second.tabId })
  })

  it("should end the session's tabs on logout and forget the session", async () => {
    const url = await start()
    const cookie = await signIn(url, 'Ada')
    const tab = openTab(url, cookie)
    await tab.call('app.state')
    const ended = nextEnded(tab)
    const response = await fetch(`${url}/logout`, { method: 'POST', headers: { cookie, Accept: 'application/json' } })
    expect(response.status).toBe(204)
    expect(await ended).toBe('logout')
    expect(await testSession(url, cookie)).toEqual({ sessionId: null, count: 0, userId: null })
  })

  it('should end every session of a user on "sign out everywhere"', async () => {
    const url = await start()
    const [a, b] = [await signIn(url, 'Ada'), await signIn(url, 'ada')]
    const [tabA, tabB] = [openTab(url, a), openTab(url, b)]
    await Promise.all([tabA.call('app.state'), tabB.call('app.state')])
    const marker = new Promise((resolve) => tabA.on('signout:everywhere', resolve))
    const ended = nextEnded(tabA)
    await tabB.call('user.signOutEverywhere').catch(() => undefined)
    await marker
    expect(await ended).toBe('logout')
    expect((await testSession(url, a)).sessionId).toBeNull()
    expect((await testSession(url, b)).sessionId).toBeNull()
  })

  it('should refuse a sign-in posted from another origin', async () => {
    const url = await start()
    const response = await fetch(`${url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'http://evil.example' },
      body: new URLSearchParams({ name: 'Mallory' }),
    })
    expect(response.status).toBe(403)
  })

  it('should sign in and out over the socket, for a browser whose cookies never stick', async () => {
    const url = await start()
    // No cookie on any request, as behind a proxy that strips Set-Cookie: the token carries the tab.
    const tab = openTab(url, '')
    await expect(tab.call('user.signIn', { name: ' ' })).rejects.toMatchObject({ code: 'BAD_REQUEST' })
    const before = await tab.call('test.whoami')
    await expect(tab.call('user.signIn', { name: 'Ada' })).resolves.toMatchObject({ user: { id: 'ada', name: 'Ada' } })
    // The call regenerated the session: the tab rejoins into the new one, signed in.
    await expect.poll(async () => (tab.status === 'ready' ? (await tab.call('test.whoami')).sessionId : before.sessionId)).not.toBe(before.sessionId)
    expect(await tab.call('app.state')).toMatchObject({ user: { id: 'ada', name: 'Ada' } })
    const ended = nextEnded(tab)
    await tab.call('user.signOut').catch(() => undefined)
    expect(await ended).toBe('logout')
  })

  it('should name the session cookie SESSION_COOKIE_NAME', async () => {
    const url = await start({ SS_TEST: '1', SESSION_COOKIE_NAME: 'app.session' })
    const response = await fetch(`${url}/login`, { method: 'POST', redirect: 'manual', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ name: 'Ada' }) })
    expect(response.headers.getSetCookie()[0]).toMatch(/^app\.session=/)
  })

  it('should take the host a TRUST_PROXY proxy forwarded for its own Origin check, and only then', async () => {
    const post = (url: string) =>
      fetch(`${url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'https://app.example.com', 'X-Forwarded-Host': 'app.example.com' },
        body: new URLSearchParams({ name: 'Ada' }),
      })
    expect((await post(await start({ SS_TEST: '1', TRUST_PROXY: 'loopback' }))).status).toBe(303)
    await server?.close()
    await stores?.close()
    rmSync(dataDir!, { recursive: true, force: true })
    expect((await post(await start())).status).toBe(403)
  })

  it('should offer no test routes or methods without SS_TEST=1', async () => {
    const url = await start({})
    const cookie = await signIn(url, 'Ada')
    expect((await fetch(`${url}/__test/session`, { headers: { cookie } })).status).toBe(404)
    await expect(openTab(url, cookie).call('test.whoami')).rejects.toMatchObject({ code: 'NOT_FOUND' })
    expect(await (await fetch(`${url}/api/me`, { headers: { cookie } })).json()).toEqual({ user: { id: 'ada', name: 'Ada' }, count: 0, test: false })
  })
})

describe('demo server on Redis', () => {
  let redis: RedisServer | undefined
  afterEach(async () => {
    // The demo first, while Redis still answers: its adapter clients quit cleanly then.
    await server?.close()
    await stores?.close()
    server = stores = undefined
    await redis?.stop()
    redis = undefined
  })

  it('should answer its HTTP routes 503 STORE_UNAVAILABLE with Retry-After while Redis is down, and serve again once it is back', async () => {
    redis = await startRedis({ args: ['--appendonly', 'yes', '--dir', (dataDir = mkdtempSync(path.join(tmpdir(), 'ss-demo-redis-')))] })
    const config = readConfig({ PORT: '0', SESSION_SECRETS: 'test-secret', SS_TEST: '1', REDIS_URL: redis.url })
    stores = await openStores(config)
    server = createDemoServer(config, stores)
    const url = await server.listen()
    const cookie = await signIn(url, 'Ada')
    const json = { cookie, Accept: 'application/json' }

    await redis.stop()
    const requests: Array<[string, () => Promise<Response>]> = [
      ['GET /api/me', () => fetch(`${url}/api/me`, { headers: json })],
      ['POST /api/counter', () => fetch(`${url}/api/counter`, { method: 'POST', headers: json })],
      ['POST /logout', () => fetch(`${url}/logout`, { method: 'POST', headers: json })],
      ['POST /login', () => fetch(`${url}/login`, { method: 'POST', redirect: 'manual', headers: { ...json, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'name=Bob' })],
      ['POST /session-socket/restore', () => fetch(`${url}/session-socket/restore`, { method: 'POST', headers: { ...json, 'Content-Type': 'application/json' }, body: JSON.stringify({ code: 'c'.repeat(32) }) })],
    ]
    for (const [name, request] of requests) {
      const response = await request()
      expect(response.status, name).toBe(503)
      expect(response.headers.get('retry-after'), name).toBe('1')
      expect(await response.json(), name).toMatchObject({ error: { code: 'STORE_UNAVAILABLE' } })
    }

    await redis.restart()
    await expect.poll(async () => (await fetch(`${url}/api/me`, { headers: json })).status, { timeout: 5000, interval: 100 }).toBe(200)
    expect(await (await fetch(`${url}/api/me`, { headers: json })).json()).toMatchObject({ user: { id: 'ada', name: 'Ada' } })
  })
})
