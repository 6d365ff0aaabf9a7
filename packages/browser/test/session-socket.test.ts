import { afterEach, describe, expect, it, vi } from 'vitest'
import { SessionSocketError, type ConnectionState } from '@session-socket/browser'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, nextStatus, waitForStatus } from '@session-socket/test-helpers/clients'
import { fakePage, sleep } from './helpers/fake-page.js'

let server: TestServer | undefined
let proxy: CookieJarProxy | undefined

afterEach(async () => {
  closeAllClients()
  await proxy?.close()
  await server?.close()
  proxy = server = undefined
})

/** Params of every 'log' call, in the order the server received them. */
let received: unknown[] = []

/** A server with a method that logs, behind a proxy the test can cut. */
async function start() {
  received = []
  server = await startTestServer({
    setup: (ss) => {
      ss.method('log', (params: unknown) => {
        received.push(params)
        return params
      })
    },
  })
  proxy = await startCookieJarProxy(server.port)
  return { server, proxy }
}

/** A port nothing listens on (a server that was there and is gone). */
async function deadPort(): Promise<number> {
  const gone = await startTestServer()
  await gone.close()
  return gone.port
}

async function rejection(promise: Promise<unknown>): Promise<SessionSocketError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  )
  expect(error).toBeInstanceOf(SessionSocketError)
  return error as SessionSocketError
}

describe('SessionSocket', () => {
  it('should send calls made before ready once registered, in order', async () => {
    const { proxy } = await start()
    const tab = makeBrowser(proxy.url).open({ page: fakePage() })
    const results = await Promise.all([1, 2, 3].map((n) => tab.call('log', n)))
    expect(results).toEqual([1, 2, 3])
    expect(received).toEqual([1, 2, 3])
  })

  it('should refuse a call with OUTBOX_FULL when maxQueue calls are already waiting', async () => {
    const { proxy } = await start()
    const tab = makeBrowser(proxy.url).open({ page: fakePage(), autoConnect: false, maxQueue: 2 })
    const waiting = [tab.call('log', 1), tab.call('log', 2)]
    const full = await rejection(tab.call('log', 3))
    expect(full.code).toBe('OUTBOX_FULL')
    expect(full.retryable).toBe(true)
    // The two that fit are sent once the tab connects.
    tab.connect()
    expect(await Promise.all(waiting)).toEqual([1, 2])
    expect(received).toEqual([1, 2])
  })

  it('should refuse a call whose id is already waiting, and take the id again once it is answered', async () => {
    const { proxy } = await start()
    const tab = makeBrowser(proxy.url).open({ page: fakePage(), autoConnect: false })
    const first = tab.call('log', 'first', { id: 'order-1' })
    const twin = await rejection(tab.call('log', 'twin', { id: 'order-1' }))
    expect(twin).toMatchObject({ code: 'BAD_REQUEST', message: 'a call with id order-1 is already waiting' })
    tab.connect()
    expect(await first).toBe('first')
    // The server remembers the id: the same id again is answered with the first reply.
    expect(await tab.call('log', 'again', { id: 'order-1' })).toBe('first')
    expect(received).toEqual(['first'])
  })

  it('should count the call timeout from call(), time spent queued included', async () => {
    const { proxy } = await start()
    const tab = makeBrowser(proxy.url).open({ page: fakePage(), autoConnect: false, callTimeout: 50 })
    expect((await rejection(tab.call('counter.increment'))).code).toBe('TIMEOUT')
  })

  it('should fail a call with CANCELLED when its signal aborts, and never send it', async () => {
    const { proxy } = await start()
    const tab = makeBrowser(proxy.url).open({ page: fakePage(), autoConnect: false })
    const controller = new AbortController()
    const call = tab.call('log', 'aborted', { signal: controller.signal })
    controller.abort()
    expect((await rejection(call)).code).toBe('CANCELLED')
    tab.connect()
    expect(await tab.call('log', 'sent')).toBe('sent')
    expect(received).toEqual(['sent'])
  })

  it('should wait backoff(attempt) before each reconnect attempt', async () => {
    const port = await deadPort()
    const attempts: number[] = []
    const states: ConnectionState[] = []
    const tab = makeBrowser(`http://127.0.0.1:${port}`).open({
      page: fakePage(),
      backoff: (attempt) => {
        attempts.push(attempt)
        return 20 + attempt
      },
    })
    tab.on('status', (state) => {
      if (state.status === 'offline') states.push(state)
    })
    await nextStatus(tab, (state) => state.status === 'offline' && state.attempt === 2)
    expect(attempts.slice(0, 3)).toEqual([0, 1, 2])
    expect(states.slice(0, 3).map((state) => state.status === 'offline' && state.retryIn)).toEqual([20, 21, 22])
  })

  it('should reconnect at once when the page comes back online, without waiting for the backoff', async () => {
    const { proxy } = await start()
    const page = fakePage()
    const tab = makeBrowser(proxy.url).open({ page, backoff: () => 60_000 })
    await waitForStatus(tab)
    proxy.cut()
    const offline = await waitForStatus(tab, 'offline')
    expect(offline).toMatchObject({ retryIn: 60_000 })
    page.emit('online')
    await waitForStatus(tab, 'ready', 2000)
  })

  it('should reconnect at once when a hidden tab becomes visible, having retried slowly while hidden', async () => {
    const { proxy } = await start()
    const page = fakePage()
    const tab = makeBrowser(proxy.url).open({ page, backoff: () => 10 })
    await waitForStatus(tab)
    page.emit('hidden')
    proxy.cut()
    // A hidden tab waits at least 5 s, so a server restart is not met by every background tab.
    expect(await waitForStatus(tab, 'offline')).toMatchObject({ retryIn: 5000 })
    await sleep(200)
    expect(tab.status).toBe('offline')
    page.emit('visible')
    await waitForStatus(tab, 'ready', 2000)
  })

  it('should disconnect on pagehide, stay away while hidden in the cache, and reconnect on pageshow', async () => {
    const { server, proxy } = await start()
    const page = fakePage()
    const tab = makeBrowser(proxy.url).open({ page, backoff: () => 10 })
    await waitForStatus(tab)
    const tabId = tab.tabId
    page.emit('pagehide')
    expect(tab.status).toBe('offline')
    await sleep(200)
    expect(server.io.of('/').sockets.size).toBe(0)
    expect(tab.status).toBe('offline')
    page.emit('pageshow')
    await waitForStatus(tab, 'ready', 2000)
    expect(tab.tabId).toBe(tabId)
    expect(server.io.of('/').sockets.size).toBe(1)
  })

  it('should stay ended after the session ends, whatever the page says', async () => {
    const { server, proxy } = await start()
    const page = fakePage()
    const tab = makeBrowser(proxy.url).open({ page, backoff: () => 10 })
    await waitForStatus(tab)
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    let connections = 0
    server.io.on('connection', () => connections++)
    await server.ss.disconnectSession(sessionId, 'logout')
    expect(await waitForStatus(tab, 'ended')).toEqual({ status: 'ended', reason: 'logout' })
    page.emit('online')
    page.emit('visible')
    page.emit('pageshow')
    await sleep(200)
    expect(tab.status).toBe('ended')
    expect(connections).toBe(0)
    expect((await rejection(tab.call('whoami'))).code).toBe('SESSION_ENDED')
  })

  it("should keep server events named like the client's own (status, ready, ended, gap) away from its listeners", async () => {
    const { server, proxy } = await start()
    const tab = makeBrowser(proxy.url).open({ page: fakePage() })
    await waitForStatus(tab)
    const own: unknown[] = []
    for (const name of ['status', 'ready', 'ended', 'gap'] as const) tab.on(name, (...args: unknown[]) => own.push([name, ...args]))
    const news: unknown[] = []
    tab.on('news', (text: unknown) => news.push(text))
    // Through Socket.IO itself: ss.toSession refuses these names, a server written without the SDK may not.
    server.io.emit('status', { status: 'ended', reason: 'logout' })
    server.io.emit('ready', { restored: false, reason: 'no-token', cookieRestored: false })
    server.io.emit('ended', 'logout')
    server.io.emit('gap', { from: 1, to: 9 })
    // A durable event of such a name is an application event too.
    const { lastSeq } = await server.links.readEvents(tab.tabId, 0, Date.now())
    server.io.emit('ss:event', { seq: lastSeq + 1, e: 'status', a: [{ status: 'closed' }] })
    server.io.emit('ss:event', { seq: lastSeq + 2, e: 'news', a: ['durable'] })
    server.io.emit('news', 'plain')
    await vi.waitFor(() => expect(news.sort()).toEqual(['durable', 'plain']))
    expect(own).toEqual([])
    expect(tab.state).toMatchObject({ status: 'ready' })
  })
})
