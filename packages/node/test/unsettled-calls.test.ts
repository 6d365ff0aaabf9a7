import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { RedisStore } from 'connect-redis'
import { createClient, type RedisClientType } from 'redis'
import { MemoryStore, type Store } from 'express-session'
import { RedisLinkStore } from '@session-socket/node/redis'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startRedis, type RedisServer } from '@session-socket/test-helpers/redis-server'
import { rawRegister, type RawClient } from './helpers/raw-client.js'

type Client = RedisClientType

let server: TestServer | undefined
const raws: RawClient[] = []
const cleanups: Array<() => unknown> = []

afterEach(async () => {
  for (const raw of raws.splice(0)) raw.close()
  await server?.close()
  server = undefined
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A Redis that keeps every write across a SIGKILL (a claim written before the crash is there after it). */
async function durableRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ss-unsettled-'))
  const redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] })
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  cleanups.push(() => redis.stop())
  return redis
}

/** A client as the Redis store's docs ask: no offline queue, quick reconnects. */
async function connect(url: string): Promise<Client> {
  const client = createClient({ url, disableOfflineQueue: true, socket: { connectTimeout: 1000, reconnectStrategy: (retries) => Math.min(50 * (retries + 1), 200) } })
  client.on('error', () => {})
  await client.connect()
  cleanups.push(() => client.isOpen && client.destroy())
  return client
}

const ready = (client: Client) => (client.isReady ? Promise.resolve() : new Promise<void>((resolve) => client.once('ready', () => resolve())))

/** What a client that follows the protocol does: sends the same call id again after each retryable answer, until it is answered. */
async function callUntilAnswered(raw: RawClient, id: string, m: string, codes: string[]): Promise<unknown> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const reply = (await raw.socket.emitWithAck('ss:call', { id, m })) as { ok: boolean; e?: { code: string; retryAfter?: number } }
    if (reply.ok || !['STORE_UNAVAILABLE', 'IN_PROGRESS'].includes(reply.e!.code)) return reply
    codes.push(reply.e!.code)
    await new Promise((resolve) => setTimeout(resolve, Math.min(reply.e!.retryAfter ?? 100, 100)))
  }
  throw new Error(`call ${id} still unanswered`)
}

describe('calls whose claim the store could not settle', () => {
  it('should run a call whose session could not be loaded once Redis is back, not answer IN_PROGRESS for the whole callLease (its release was lost)', async () => {
    const redis = await durableRedis()
    const client = await connect(redis.url)
    const sessionStore: Store = new RedisStore({ client, prefix: 'sess:' })
    // The session read waits at this gate, so Redis dies between the claim and the load.
    let gate: Promise<void> | undefined
    const get = sessionStore.get.bind(sessionStore)
    sessionStore.get = (sid, callback) => void (gate ?? Promise.resolve()).then(() => get(sid, callback))
    let runs = 0
    server = await startTestServer({
      sessionStore,
      links: new RedisLinkStore({ client, prefix: 'ss:' }),
      setup: (ss) => ss.method('work', () => ++runs),
    })
    const raw = await rawRegister(server.url, { token: null, tabId: 'outage-tab' })
    raws.push(raw)

    let open!: () => void
    gate = new Promise<void>((resolve) => (open = resolve))
    const first = raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'work' })
    await vi.waitFor(async () => expect(await client.get('ss:call:outage-tab:c1')).not.toBeNull())
    redis.kill()
    open()
    gate = undefined
    expect(await first).toMatchObject({ ok: false, e: { code: 'STORE_UNAVAILABLE' } })
    expect(runs).toBe(0)

    await redis.restart()
    await ready(client)
    const back = performance.now()
    // The claim survived the crash (append-only file). Once the store answers another call, the
    // node gives it up, so a resend to any node can run the call...
    expect(await client.get('ss:call:outage-tab:c1')).not.toBeNull()
    expect(await raw.socket.emitWithAck('ss:call', { id: 'other', m: 'whoami' })).toMatchObject({ ok: true })
    await vi.waitFor(async () => expect(await client.get('ss:call:outage-tab:c1')).toBeNull(), { timeout: 1000, interval: 20 })
    // ...and the resend runs it, once.
    const codes: string[] = []
    expect(await callUntilAnswered(raw, 'c1', 'work', codes)).toEqual({ ok: true, r: 1 })
    expect(performance.now() - back).toBeLessThan(1500)
    expect(codes).not.toContain('IN_PROGRESS')
    expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'work' })).toEqual({ ok: true, r: 1 })
    expect(runs).toBe(1)
  })

  it('should run at once on a resend to the same node a call whose release was lost, without waiting for the store to be written', async () => {
    const redis = await durableRedis()
    const client = await connect(redis.url)
    const sessionStore: Store = new RedisStore({ client, prefix: 'sess:' })
    let gate: Promise<void> | undefined
    const get = sessionStore.get.bind(sessionStore)
    sessionStore.get = (sid, callback) => void (gate ?? Promise.resolve()).then(() => get(sid, callback))
    let runs = 0
    server = await startTestServer({ sessionStore, links: new RedisLinkStore({ client, prefix: 'ss:' }), setup: (ss) => ss.method('work', () => ++runs) })
    const raw = await rawRegister(server.url, { token: null, tabId: 'again-tab' })
    raws.push(raw)
    let open!: () => void
    gate = new Promise<void>((resolve) => (open = resolve))
    const first = raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'work' })
    await vi.waitFor(async () => expect(await client.get('ss:call:again-tab:c1')).not.toBeNull())
    redis.kill()
    open()
    gate = undefined
    expect(await first).toMatchObject({ ok: false, e: { code: 'STORE_UNAVAILABLE' } })
    await redis.restart()
    await ready(client)
    // The claim is still there, this node's: the store gives it back to its owner.
    expect(await client.get('ss:call:again-tab:c1')).not.toBeNull()
    expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'work' })).toEqual({ ok: true, r: 1 })
    expect(runs).toBe(1)
  })

  it('should take back a claim the store wrote after its caller gave up (a stalled Redis), instead of answering IN_PROGRESS for the lease', async () => {
    const redis = await durableRedis()
    const client = await connect(redis.url)
    let runs = 0
    server = await startTestServer({
      links: new RedisLinkStore({ client, prefix: 'ss:', commandTimeoutMs: 300 }),
      setup: (ss) => ss.method('work', () => ++runs, { session: false }),
    })
    const raw = await rawRegister(server.url, { token: null, tabId: 'stalled-tab' })
    raws.push(raw)
    // A first call loads the claim script into Redis (EVALSHA finds it from now on).
    expect(await raw.socket.emitWithAck('ss:call', { id: 'c0', m: 'work' })).toEqual({ ok: true, r: 1 })
    // SIGSTOP: the claim goes out on the open connection and waits there; its caller gives up.
    redis.pause()
    cleanups.push(() => redis.resume())
    expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'work' })).toMatchObject({ ok: false, e: { code: 'STORE_UNAVAILABLE' } })
    redis.resume()
    // Redis runs the queued claim now: the key is pending, for a caller that was told STORE_UNAVAILABLE.
    await vi.waitFor(async () => expect(await client.get('ss:call:stalled-tab:c1')).toMatch(/^\d+\.\d+\|$/))
    const codes: string[] = []
    expect(await callUntilAnswered(raw, 'c1', 'work', codes)).toEqual({ ok: true, r: 2 })
    expect(codes).toEqual([])
    expect(runs).toBe(2)
  })

  it('should apply a session change once when its save reached the store but the answer did not: the resend saves the same session again and gets the first reply', async () => {
    const sessionStore = new MemoryStore()
    const set = sessionStore.set.bind(sessionStore)
    // A store that writes, then fails before it answers (a crash after the write, a lost reply).
    let lostReplies = 0
    sessionStore.set = (sid, data, callback) =>
      set(sid, data, (err) => {
        if (!err && lostReplies > 0) {
          lostReplies--
          return callback?.(new Error('connection reset after the write'))
        }
        callback?.(err)
      })
    let runs = 0
    server = await startTestServer({
      sessionStore,
      setup: (ss) =>
        ss.method('counter.once', (_params, ctx) => {
          runs++
          ctx.session!.count = (ctx.session!.count ?? 0) + 1
          return ctx.session!.count
        }),
    })
    const raw = await rawRegister(server.url, { token: null, tabId: 'lost-save-tab' })
    raws.push(raw)
    lostReplies = 1
    expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'counter.once' })).toMatchObject({ ok: false, e: { code: 'STORE_UNAVAILABLE', retryAfter: 1000 } })
    expect(await raw.socket.emitWithAck('ss:call', { id: 'c1', m: 'counter.once' })).toEqual({ ok: true, r: 1 })
    expect(await raw.socket.emitWithAck('ss:call', { id: 'c2', m: 'counter.once' })).toEqual({ ok: true, r: 2 })
    expect(runs).toBe(2)
  })

  it('should answer a resend of a call that ran while its reply could not be recorded from the reply, and record it once Redis is back', async () => {
    const redis = await durableRedis()
    const client = await connect(redis.url)
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let runs = 0
    server = await startTestServer({
      links: new RedisLinkStore({ client, prefix: 'ss:' }),
      setup: (ss) =>
        ss.method(
          'pay',
          async () => {
            runs++
            await held
            return { paid: runs }
          },
          { session: false },
        ),
    })
    const raw = await rawRegister(server.url, { token: null, tabId: 'reply-tab' })
    raws.push(raw)
    const first = raw.socket.emitWithAck('ss:call', { id: 'p1', m: 'pay' })
    await vi.waitFor(() => expect(runs).toBe(1))
    redis.kill()
    await vi.waitFor(() => expect(client.isReady).toBe(false))
    release()
    // The answer goes out although the store could not keep it.
    expect(await first).toEqual({ ok: true, r: { paid: 1 } })

    await redis.restart()
    await ready(client)
    // A resend (its answer was lost on the way, say) gets the reply, never IN_PROGRESS, and the call does not run again.
    const codes: string[] = []
    expect(await callUntilAnswered(raw, 'p1', 'pay', codes)).toEqual({ ok: true, r: { paid: 1 } })
    expect(codes).toEqual([])
    expect(runs).toBe(1)
    // Once the store answers another call, it gets the reply too, for a resend to any node.
    expect((await client.get('ss:call:reply-tab:p1')) ?? '').not.toContain('"paid":1')
    await raw.socket.emitWithAck('ss:call', { id: 'p2', m: 'pay' })
    await vi.waitFor(async () => expect(await client.get('ss:call:reply-tab:p1')).toContain('"paid":1'), { timeout: 1000, interval: 20 })
  })

  it('should apply every call of six tabs once and answer each within about a second of Redis coming back from a SIGKILL', async () => {
    const redis = await durableRedis()
    const client = await connect(redis.url)
    let runs = 0
    server = await startTestServer({
      sessionStore: new RedisStore({ client, prefix: 'sess:' }),
      links: new RedisLinkStore({ client, prefix: 'ss:' }),
      setup: (ss) =>
        ss.method('counter.tally', (_params, ctx) => {
          runs++
          ctx.session!.count = (ctx.session!.count ?? 0) + 1
          return ctx.session!.count
        }),
    })
    // One session per tab: each tab's answers are its session's counter.
    const tabs = await Promise.all(Array.from({ length: 6 }, (_, i) => rawRegister(server!.url, { token: null, tabId: `tab${i}` })))
    raws.push(...tabs)
    const counts = tabs.map((): number[] => [])
    let back: number | undefined
    const lateBy: number[] = []
    let stop = false
    const loops = tabs.map(async (raw, i) => {
      for (let n = 0; n < 10_000 && !stop; n++) {
        const codes: string[] = []
        const reply = (await callUntilAnswered(raw, `c${n}`, 'counter.tally', codes)) as { ok: boolean; r: number }
        if (!reply.ok) throw new Error(`tab${i} c${n}: ${JSON.stringify(reply)}`)
        counts[i]!.push(reply.r)
        if (back !== undefined && codes.length > 0) lateBy.push(performance.now() - back)
        if (codes.includes('IN_PROGRESS')) throw new Error(`tab${i} c${n} was answered IN_PROGRESS after the outage`)
      }
    })
    await vi.waitFor(() => expect(runs).toBeGreaterThan(60))
    redis.kill()
    await new Promise((resolve) => setTimeout(resolve, 3000))
    await redis.restart()
    await ready(client)
    back = performance.now()
    const after = runs
    // A loop that fails (an answer that is not retried) fails the test with its reason.
    const failed = Promise.all(loops).then(() => new Promise<never>(() => {}))
    await Promise.race([vi.waitFor(() => expect(runs).toBeGreaterThan(after + 60), { timeout: 5000 }), failed])
    stop = true
    await Promise.all(loops)
    // Each answered call counted once in its session: 1, 2, 3… with none lost or twice. (A call
    // answered STORE_UNAVAILABLE because its session could not be saved ran without effect and
    // ran again when resent.)
    for (const tab of counts) expect(tab).toEqual(Array.from({ length: tab.length }, (_, n) => n + 1))
    // The calls held up by the outage were answered within about a second of the store's return.
    expect(Math.max(0, ...lateBy)).toBeLessThan(1500)
  })
})
