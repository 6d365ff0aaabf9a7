import { afterEach, describe, expect, it } from 'vitest'
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

/** A server with a method that never answers and one that logs, behind a proxy the test can cut. */
async function start() {
  received = []
  server = await startTestServer({
    setup: (ss) => {
      ss.method('hang', () => new Promise(() => {}), { session: false })
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

  it('should fail a call with TIMEOUT when the server does not answer in time', async () => {
    const { proxy } = await start()
    const tab = makeBrowser(proxy.url).open({ page: fakePage() })
    await waitForStatus(tab)
    const started = Date.now()
    const error = await rejection(tab.call('hang', undefined, { timeout: 100 }))
    expect(error.code).toBe('TIMEOUT')
    expect(Date.now() - started).toBeLessThan(1000)
    // The connection is fine: later calls are answered.
    expect(await tab.call('counter.increment')).toEqual({ count: 1 })
  })

  it('should time out each call at its own deadline, a short one made after a long one first', async () => {
    const { proxy } = await start()
    const tab = makeBrowser(proxy.url).open({ page: fakePage() })
    await waitForStatus(tab)
    const started = Date.now()
    const settled = (promise: Promise<unknown>) => promise.then(() => Date.now() - started, () => Date.now() - started)
    const long = tab.call('hang', undefined, { timeout: 600 })
    const short = rejection(tab.call('hang', undefined, { timeout: 100 }))
    const never = tab.call('hang', undefined, { timeout: Infinity })
    const answered = tab.call('log', 'answered', { timeout: 150 })
    expect((await short).code).toBe('TIMEOUT')
    expect(Date.now() - started).toBeLessThan(500)
    expect(await answered).toBe('answered')
    const longError = await rejection(long)
    expect(longError).toMatchObject({ code: 'TIMEOUT', message: "'hang' got no answer in 600 ms" })
    expect(Date.now() - started).toBeGreaterThanOrEqual(590)
    // A call with no timeout is still waiting; it fails only when the client closes.
    const neverSettled = settled(never)
    await sleep(100)
    tab.close()
    expect(await neverSettled).toBeGreaterThanOrEqual(700)
    expect((await rejection(never)).code).toBe('CLOSED')
  })

  it('should time out calls made after the client closed and connected again', async () => {
    const { proxy } = await start()
    const tab = makeBrowser(proxy.url).open({ page: fakePage() })
    await waitForStatus(tab)
    // The first call's deadline comes before the second's: the one timer must not be left
    // thinking it is armed for it.
    const first = rejection(tab.call('hang', undefined, { timeout: 300 }))
    tab.close()
    expect((await first).code).toBe('CLOSED')
    tab.connect()
    await waitForStatus(tab)
    const started = Date.now()
    expect((await rejection(tab.call('hang', undefined, { timeout: 400 }))).code).toBe('TIMEOUT')
    expect(Date.now() - started).toBeLessThan(1500)
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

  it('should not send again a call that timed out while it waited to retry', async () => {
    received = []
    let release: () => void = () => {}
    server = await startTestServer({
      ss: { maxInFlight: 1 },
      setup: (ss) => {
        ss.method('hold', () => new Promise<void>((resolve) => (release = resolve)), { session: false })
        ss.method('log', (params: unknown) => void received.push(params), { session: false })
      },
    })
    const tab = makeBrowser(server.url).open({ page: fakePage() })
    await waitForStatus(tab)
    const held = tab.call('hold')
    await sleep(20)
    // Answered RATE_LIMITED (retryAfter 100 ms); it times out before its retry.
    expect((await rejection(tab.call('log', 'late', { timeout: 40 }))).code).toBe('TIMEOUT')
    release()
    await held
    await sleep(250)
    expect(received).toEqual([])
    await tab.call('log', 'next')
    expect(received).toEqual(['next'])
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
    expect((await rejection(tab.call('log', 'pre-aborted', { signal: AbortSignal.abort() }))).code).toBe('CANCELLED')
    tab.connect()
    expect(await tab.call('log', 'sent')).toBe('sent')
    expect(received).toEqual(['sent'])
  })

  it('should take its abort listener off a long-lived signal once the call is answered', async () => {
    const { proxy } = await start()
    const tab = makeBrowser(proxy.url).open({ page: fakePage() })
    const controller = new AbortController()
    const listening = new Set<unknown>()
    const add = controller.signal.addEventListener.bind(controller.signal)
    const remove = controller.signal.removeEventListener.bind(controller.signal)
    controller.signal.addEventListener = ((type: string, listener: unknown, options?: unknown) => {
      listening.add(listener)
      add(type, listener as EventListener, options as AddEventListenerOptions)
    }) as typeof controller.signal.addEventListener
    controller.signal.removeEventListener = ((type: string, listener: unknown, options?: unknown) => {
      listening.delete(listener)
      remove(type, listener as EventListener, options as EventListenerOptions)
    }) as typeof controller.signal.removeEventListener
    for (let i = 0; i < 5; i++) expect(await tab.call('log', i, { signal: controller.signal })).toBe(i)
    expect((await rejection(tab.call('hang', undefined, { signal: controller.signal, timeout: 50 }))).code).toBe('TIMEOUT')
    expect(listening.size).toBe(0)
    // Aborting now touches no call of the past.
    const pending = tab.call('hang', undefined, { signal: controller.signal })
    expect(listening.size).toBe(1)
    controller.abort()
    expect((await rejection(pending)).code).toBe('CANCELLED')
    expect(listening.size).toBe(0)
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
})
