import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MemoryStore } from 'express-session'
import { SessionSocketError, type CallReply } from '@session-socket/protocol'
import { SqliteLinkStore } from '@session-socket/node/sqlite'
import { startTestServer, type TestServer, type TestServerOptions } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'
import type { SessionSocket } from '@session-socket/browser'
import { MemoryLinkStore } from '@session-socket/node'
import { rawRegister } from './helpers/raw-client.js'

let server: TestServer | undefined
let proxy: CookieJarProxy | undefined
const cleanups: Array<() => unknown> = []

afterEach(async () => {
  closeAllClients()
  await proxy?.close()
  await server?.close()
  proxy = server = undefined
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function start(options: TestServerOptions = {}): Promise<SessionSocket> {
  server = await startTestServer(options)
  proxy = await startCookieJarProxy(server.port)
  const tab = makeBrowser(proxy.url).open()
  await waitForStatus(tab)
  return tab
}

function rejection(promise: Promise<unknown>): Promise<SessionSocketError> {
  return promise.then(
    () => {
      throw new Error('expected the call to fail')
    },
    (err: unknown) => {
      expect(err).toBeInstanceOf(SessionSocketError)
      return err as SessionSocketError
    },
  )
}

describe('rpc', () => {
  it('should share one session between HTTP requests and calls', async () => {
    const tab = await start()
    await fetch(`${proxy!.url}/count`, { method: 'POST' })
    expect(await tab.call('counter.increment', { by: 2 })).toEqual({ count: 3 })
    const http = (await (await fetch(`${proxy!.url}/whoami`)).json()) as { count: number }
    expect(http.count).toBe(3)
  })

  it('should answer NOT_FOUND for an unknown method', async () => {
    const tab = await start()
    const error = await rejection(tab.call('nope'))
    expect(error.code).toBe('NOT_FOUND')
    expect(error.message).toBe("no method 'nope'")
  })

  it('should answer BAD_REQUEST for params that are not plain JSON data', async () => {
    const tab = await start()
    const error = await rejection(tab.call('whoami', JSON.parse('{"__proto__":{"admin":true}}')))
    expect(error.code).toBe('BAD_REQUEST')
    expect(error.message).toContain('__proto__')
  })

  it('should pass a typed error thrown by a handler and hide anything else', async () => {
    const tab = await start({
      setup(ss) {
        ss.method('cart.get', () => {
          throw new SessionSocketError('NOT_FOUND', 'no such cart')
        })
        ss.method('boom', () => {
          throw new Error('database password is hunter2')
        })
      },
    })
    expect(await rejection(tab.call('cart.get'))).toMatchObject({ code: 'NOT_FOUND', message: 'no such cart' })
    const hidden = await rejection(tab.call('boom'))
    expect(hidden).toMatchObject({ code: 'INTERNAL', message: 'internal error' })
    expect(JSON.stringify(hidden)).not.toContain('hunter2')
    // The server is still fine.
    expect(await tab.call('counter.increment')).toEqual({ count: 1 })
  })

  it('should fail with TIMEOUT when the answer does not come in time', async () => {
    const tab = await start({ setup: (ss) => ss.method('slow', () => new Promise(() => {})) })
    const error = await rejection(tab.call('slow', undefined, { timeout: 100 }))
    expect(error.code).toBe('TIMEOUT')
  })

  it('should fail with CANCELLED when the signal aborts', async () => {
    const tab = await start({ setup: (ss) => ss.method('slow', () => new Promise(() => {})) })
    const controller = new AbortController()
    const pending = rejection(tab.call('slow', undefined, { signal: controller.signal }))
    controller.abort()
    expect((await pending).code).toBe('CANCELLED')
  })

  it('should fail with OUTBOX_FULL when too many calls wait for a connection', async () => {
    server = await startTestServer()
    const tab = makeBrowser(server.url).open({ autoConnect: false, maxQueue: 2 })
    const waiting = [tab.call('whoami'), tab.call('whoami')]
    expect((await rejection(tab.call('whoami'))).code).toBe('OUTBOX_FULL')
    tab.connect()
    await expect(Promise.all(waiting)).resolves.toHaveLength(2)
  })

  it('should send calls made before ready once, in order, after register', async () => {
    const seen: number[] = []
    server = await startTestServer({ setup: (ss) => ss.method('log.append', (n: number) => void seen.push(n), { session: false }) })
    const tab = makeBrowser(server.url).open({ autoConnect: false })
    const calls = [1, 2, 3, 4, 5].map((n) => tab.call('log.append', n))
    tab.connect()
    await Promise.all(calls)
    expect(seen).toEqual([1, 2, 3, 4, 5])
  })

  it('should queue calls made while the network is cut and send each once after reconnect', async () => {
    const seen: number[] = []
    const tab = await start({ setup: (ss) => ss.method('log.append', (n: number) => void seen.push(n), { session: false }) })
    await tab.call('log.append', 0)
    proxy!.cut()
    await waitForStatus(tab, 'offline')
    const calls = [1, 2, 3].map((n) => tab.call('log.append', n))
    await Promise.all(calls)
    expect(seen).toEqual([0, 1, 2, 3])
  })

  it('should answer a call resent after a lost ack from memory, not run it twice', async () => {
    let runs = 0
    const tab = await start({
      setup(ss) {
        ss.method('pay', (_params, ctx) => {
          runs++
          ctx.session!.count = (ctx.session!.count ?? 0) + 100
          // The connection dies before the answer can leave: the client must resend.
          if (runs === 1) ctx.socket.conn.close()
          return { paid: ctx.session!.count }
        })
      },
    })
    await expect(tab.call('pay')).resolves.toEqual({ paid: 100 })
    expect(runs).toBe(1)
    expect(((await (await fetch(`${proxy!.url}/whoami`)).json()) as { count: number }).count).toBe(100)
  })

  it('should answer from memory a resend of a call whose handler answered at once (no session, no promise)', async () => {
    let runs = 0
    const tab = await start({
      setup(ss) {
        ss.method(
          'pay.now',
          (_params, ctx) => {
            runs++
            // The answer is recorded before it leaves, and is lost with the connection.
            if (runs === 1) ctx.socket.conn.close()
            return { paid: runs }
          },
          { session: false },
        )
      },
    })
    await expect(tab.call('pay.now')).resolves.toEqual({ paid: 1 })
    expect(runs).toBe(1)
  })

  it('should join a resend to the run still in progress', async () => {
    let runs = 0
    let finish: (value: string) => void = () => {}
    server = await startTestServer({
      setup(ss) {
        ss.method('slow.pay', () => {
          runs++
          return new Promise<string>((resolve) => (finish = resolve))
        }, { session: false })
        ss.method('ping', () => 'pong', { session: false })
      },
    })
    const first = await rawRegister(server.url, { token: null, tabId: 'join-tab' })
    first.socket.emit('ss:call', { id: 'c1', m: 'slow.pay' }, () => {})
    await vi.waitFor(() => expect(runs).toBe(1))
    // The connection is lost while the handler runs; the tab comes back and resends the call.
    first.close()
    const again = await rawRegister(server.url, { token: first.reply.token, tabId: 'join-tab' })
    try {
      let resent: CallReply | undefined
      const resend = again.socket.emitWithAck('ss:call', { id: 'c1', m: 'slow.pay' }).then((reply: CallReply) => (resent = reply))
      // Packets of one socket are handled in order: once ping is answered, the resend was handled.
      expect(await again.socket.emitWithAck('ss:call', { id: 'c2', m: 'ping' })).toEqual({ ok: true, r: 'pong' })
      // Joined, it waits for the run (not answered IN_PROGRESS, and not run a second time).
      expect(resent).toBeUndefined()
      finish('done')
      expect(await resend).toEqual({ ok: true, r: 'done' })
      expect(runs).toBe(1)
    } finally {
      again.close()
    }
  })

  it.each([
    ['memory', () => new MemoryLinkStore()],
    ['SQLite', () => new SqliteLinkStore({ path: ':memory:' })],
  ])('should run a call once the session store is back, when loading its session failed (nothing was run, so nothing is remembered; %s link store)', async (_name, makeLinks) => {
    const links = makeLinks()
    cleanups.push(() => links.close())
    const sessionStore = new MemoryStore()
    const get = sessionStore.get.bind(sessionStore)
    let failures = 0
    sessionStore.get = (sid, callback) => {
      if (failures === 0) return get(sid, callback)
      failures--
      callback(new Error('connection reset'))
    }
    server = await startTestServer({ sessionStore, links })
    proxy = await startCookieJarProxy(server.port)
    const tab = makeBrowser(proxy.url).open({ callTimeout: 8_000 })
    await waitForStatus(tab)
    failures = 1
    // STORE_UNAVAILABLE (retryAfter 1 s), then the same call id again: it must run now.
    await expect(tab.call('counter.increment')).resolves.toEqual({ count: 1 })
    expect(failures).toBe(0)
  })

  it('should answer a call that did not run only once its claim is released, so that a resend at once runs it', async () => {
    class SlowRelease extends MemoryLinkStore {
      // A store across the network: the release takes a while to be done.
      override async releaseCall(key: string): Promise<void> {
        await new Promise((resolve) => setTimeout(resolve, 50))
        return super.releaseCall(key)
      }
    }
    const sessionStore = new MemoryStore()
    const get = sessionStore.get.bind(sessionStore)
    let failures = 0
    sessionStore.get = (sid, callback) => {
      if (failures === 0) return get(sid, callback)
      failures--
      callback(new Error('connection reset'))
    }
    server = await startTestServer({ sessionStore, links: new SlowRelease() })
    const raw = await rawRegister(server.url, { token: null, tabId: 'release-tab' })
    try {
      failures = 1
      expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'counter.increment' })).toMatchObject({ ok: false, e: { code: 'STORE_UNAVAILABLE' } })
      expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'counter.increment' })).toEqual({ ok: true, r: { count: 1 } })
    } finally {
      raw.close()
    }
  })

  it('should fail with SESSION_ENDED and end the tab when the session expired in the store', async () => {
    const tab = await start()
    const { sessionId } = (await tab.call('whoami')) as { sessionId: string }
    await new Promise<void>((resolve) => server!.sessionStore.destroy(sessionId, () => resolve()))
    const ended = new Promise((resolve) => tab.on('ended', resolve))
    expect((await rejection(tab.call('counter.increment'))).code).toBe('SESSION_ENDED')
    // Destroying through the store is what logout does.
    expect(await ended).toBe('logout')
  })

  it('should refuse more calls in flight than maxInFlight with RATE_LIMITED, then run them', async () => {
    const releases: Array<() => void> = []
    server = await startTestServer({
      ss: { maxInFlight: 2 },
      setup: (ss) => ss.method('hold', () => new Promise<void>((resolve) => releases.push(resolve)), { session: false }),
    })
    const raw = await rawRegister(server.url, { token: null, tabId: 'limit-tab' })
    try {
      const held = ['c1', 'c2'].map((id) => raw.socket.emitWithAck('ss:call', { id, m: 'hold' }))
      expect(await raw.socket.emitWithAck('ss:call', { id: 'c3', m: 'hold' })).toMatchObject({ ok: false, e: { code: 'RATE_LIMITED', retryAfter: 100 } })
      expect(releases).toHaveLength(2)
      for (const release of releases.splice(0)) release()
      expect(await Promise.all(held)).toEqual([{ ok: true, r: null }, { ok: true, r: null }])
      // Refused before it was claimed: resent (as the client does after retryAfter), it runs.
      const third = raw.socket.emitWithAck('ss:call', { id: 'c3', m: 'hold' })
      await vi.waitFor(() => expect(releases).toHaveLength(1))
      releases.pop()!()
      expect(await third).toEqual({ ok: true, r: null })
    } finally {
      raw.close()
    }
    // The browser client resends a refused call by itself after retryAfter.
    const tab = makeBrowser(server.url).open()
    await waitForStatus(tab)
    const calls = [tab.call('hold'), tab.call('hold'), tab.call('hold')]
    await vi.waitFor(() => expect(releases).toHaveLength(2))
    for (const release of releases.splice(0)) release()
    await vi.waitFor(() => expect(releases).toHaveLength(1))
    releases[0]!()
    await expect(Promise.all(calls)).resolves.toHaveLength(3)
  })

  it('should apply concurrent session changes of one session one after another', async () => {
    const tab = await start()
    const results = await Promise.all(Array.from({ length: 10 }, () => tab.call('counter.increment') as Promise<{ count: number }>))
    expect(results.map((r) => r.count).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    expect(((await (await fetch(`${proxy!.url}/whoami`)).json()) as { count: number }).count).toBe(10)
  })

  it('should not let a handler that never settles stall its session longer than sessionLockTimeout', async () => {
    const tab = await start({ ss: { sessionLockTimeout: 200 }, setup: (ss) => ss.method('stuck', () => new Promise(() => {})) })
    void tab.call('stuck', undefined, { timeout: 5_000 }).catch(() => undefined)
    const started = Date.now()
    expect(await tab.call('counter.increment')).toEqual({ count: 1 })
    expect(Date.now() - started).toBeGreaterThanOrEqual(150)
  })

  it('should answer IN_PROGRESS for a call another server started, and run it once that server\'s lease ran out', async () => {
    let offset = 0
    let runs = 0
    const links = new MemoryLinkStore()
    server = await startTestServer({ links, ss: { callLease: 1_000, now: () => Date.now() + offset }, setup: (ss) => ss.method('work', () => ++runs, { session: false }) })
    const raw = await rawRegister(server.url, { token: null, tabId: 'lease-tab' })
    try {
      // A server that crashed mid-call left its claim behind in the shared store.
      await links.claimCall('lease-tab:c1', 1_000, Date.now())
      const busy = await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'work' })
      expect(busy).toMatchObject({ ok: false, e: { code: 'IN_PROGRESS', retryAfter: 500 } })
      offset = 2_000
      expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'work' })).toEqual({ ok: true, r: 1 })
      expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'work' })).toEqual({ ok: true, r: 1 })
      expect(runs).toBe(1)
    } finally {
      raw.close()
    }
  })
})

describe('call results in the link store', () => {
  it('should honour a MemoryLinkStore subclass that overrides claimCall and finishCall (they were bypassed)', async () => {
    const seen: string[] = []
    class SharedResults extends MemoryLinkStore {
      // E.g. results kept elsewhere: a call that another process already answered is not run.
      override async claimCall(key: string, ttlMs: number, now: number) {
        seen.push(`claim ${key}`)
        if (key === 'sub-tab:elsewhere') return { state: 'done' as const, reply: { ok: true as const, r: 'answered elsewhere' } }
        return super.claimCall(key, ttlMs, now)
      }
      override async finishCall(key: string, reply: CallReply, ttlMs: number, now: number) {
        seen.push(`finish ${key}`)
        return super.finishCall(key, reply, ttlMs, now)
      }
    }
    let runs = 0
    server = await startTestServer({ links: new SharedResults(), setup: (ss) => ss.method('work', () => ++runs, { session: false }) })
    const raw = await rawRegister(server.url, { token: null, tabId: 'sub-tab' })
    try {
      expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'work' })).toEqual({ ok: true, r: 1 })
      expect(await raw.socket.emitWithAck('ss:call', { id: 'elsewhere', m: 'work' })).toEqual({ ok: true, r: 'answered elsewhere' })
      expect(runs).toBe(1)
      expect(seen).toEqual(['claim sub-tab:c1', 'finish sub-tab:c1', 'claim sub-tab:elsewhere'])
    } finally {
      raw.close()
    }
  })

  it('should take a plain-value call on the memory store from claim to recorded reply in one turn, with no promise between', async () => {
    const marks: string[] = []
    class Marking extends MemoryLinkStore {
      override claimCall(key: string, ttlMs: number, now: number) {
        marks.push('claim')
        // Runs after the current turn's synchronous code, before any later promise callback.
        queueMicrotask(() => marks.push('a microtask later'))
        return super.claimCall(key, ttlMs, now)
      }
      override finishCall(key: string, reply: CallReply, ttlMs: number, now: number) {
        marks.push('finish')
        return super.finishCall(key, reply, ttlMs, now)
      }
    }
    server = await startTestServer({ links: new Marking(), setup: (ss) => ss.method('add', (n: number) => n + 1, { session: false }) })
    const raw = await rawRegister(server.url, { token: null, tabId: 'turn-tab' })
    try {
      expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'add', p: 1 })).toEqual({ ok: true, r: 2 })
      expect(marks).toEqual(['claim', 'finish', 'a microtask later'])
    } finally {
      raw.close()
    }
  })
})

describe('ctx.callKey', () => {
  it('should be tabId:callId, the same on a resend and different for another call', async () => {
    const keys: string[] = []
    server = await startTestServer({ setup: (ss) => ss.method('order.place', (_params, ctx) => keys.push(ctx.callKey), { session: false }) })
    const raw = await rawRegister(server.url, { token: null, tabId: 'key-tab' })
    try {
      expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'order.place' })).toEqual({ ok: true, r: 1 })
      // Answered from the recorded reply: the handler does not run again.
      expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'order.place' })).toEqual({ ok: true, r: 1 })
      expect(await raw.socket.emitWithAck('ss:call', { id: 'c2', m: 'order.place' })).toEqual({ ok: true, r: 2 })
      expect(keys).toEqual(['key-tab:c1', 'key-tab:c2'])
    } finally {
      raw.close()
    }
  })

  it('should be the same when a new server on the same SQLite store runs a call again whose reply was never recorded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ss-call-key-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const path = join(dir, 'links.db')
    const sessionStore = new MemoryStore()
    const keys: string[] = []
    const orders = new Map<string, string>()
    const method = (hang: boolean) => (ss: TestServer['ss']) =>
      ss.method('order.place', (params: { sku: string }, ctx) => {
        keys.push(ctx.callKey)
        // The app's effect, idempotent by the key: a second run places nothing new.
        if (!orders.has(ctx.callKey)) orders.set(ctx.callKey, params.sku)
        // The first server dies after the effect, before its reply is recorded.
        return hang ? new Promise(() => {}) : { orders: orders.size }
      })
    const first = new SqliteLinkStore({ path })
    server = await startTestServer({ links: first, sessionStore, ss: { callLease: 300 }, setup: method(true) })
    const port = server.port
    proxy = await startCookieJarProxy(port)
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const placed = tab.call('order.place', { sku: 'A-1' })
    await vi.waitFor(() => expect(keys).toHaveLength(1))
    await server.close()
    await first.close()
    // A restart on the same file: the claim of the dead server lapses after callLease, and the
    // client's resend (same call id) runs the call again.
    const second = new SqliteLinkStore({ path })
    cleanups.push(() => second.close())
    server = await startTestServer({ links: second, sessionStore, port, ss: { callLease: 300 }, setup: method(false) })
    await expect(placed).resolves.toEqual({ orders: 1 })
    expect(keys).toHaveLength(2)
    expect(keys[1]).toBe(keys[0])
    expect(keys[0]!.startsWith(`${tab.tabId}:`)).toBe(true)
    // Another call, with the same params, is another key.
    await expect(tab.call('order.place', { sku: 'A-1' })).resolves.toEqual({ orders: 2 })
    expect(keys).toHaveLength(3)
    expect(keys[2]).not.toBe(keys[0])
  })
})

describe('ctx.session after regenerate()', () => {
  it('should be the new session, as req.session is over HTTP, so a sign-in over RPC can write the user into it', async () => {
    const tab = await start({
      setup(ss) {
        ss.method('signIn', async (params: { user: string }, ctx) => {
          await new Promise<void>((resolve, reject) => ctx.session!.regenerate((err) => (err ? reject(err) : resolve())))
          ctx.session!.userId = params.user
          return { sessionId: ctx.session!.id }
        })
      },
    })
    const before = (await tab.call('whoami')) as { sessionId: string }
    const { sessionId } = (await tab.call('signIn', { user: 'ada' })) as { sessionId: string }
    expect(sessionId).not.toBe(before.sessionId)
    await expect.poll(async () => ((await (await fetch(`${proxy!.url}/whoami`)).json()) as { sessionId: string; userId: string | null })).toEqual({ sessionId, count: 0, userId: 'ada' })
  })
})
