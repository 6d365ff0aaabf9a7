import { afterEach, describe, expect, it, vi } from 'vitest'
import { MemoryStore, type SessionData } from 'express-session'
import { SessionSocketError, type CallReply } from '@session-socket/protocol'
import { startTestServer, type TestServer, type TestServerOptions } from '@session-socket/test-helpers/test-server'
import { rawRegister, type RawClient } from './helpers/raw-client.js'

/** A real MemoryStore that counts reads and writes, and can refuse writes. */
class CountingStore extends MemoryStore {
  gets = 0
  sets = 0
  /** How many of the next writes fail. */
  failingSets = 0

  override get(sid: string, callback: (err: unknown, session?: SessionData | null) => void): void {
    this.gets++
    super.get(sid, callback)
  }

  override set(sid: string, session: SessionData, callback?: (err?: unknown) => void): void {
    this.sets++
    if (this.failingSets > 0) {
      this.failingSets--
      callback?.(new Error('disk full'))
      return
    }
    super.set(sid, session, callback)
  }

  stored(sid: string): Promise<(SessionData & { poisoned?: boolean }) | null | undefined> {
    return new Promise((resolve, reject) => super.get(sid, (err, data) => (err ? reject(err) : resolve(data))))
  }
}

let server: TestServer | undefined
const raws: RawClient[] = []

afterEach(async () => {
  for (const raw of raws.splice(0)) raw.close()
  await server?.close()
  server = undefined
})

interface Started {
  store: CountingStore
  raw: RawClient
  sessionId: string
  /**
   * Sends `calls` while a session-using call holds the session, so that they wait behind it and
   * form one batch; releases it with the store's counts at zero. Resolves with their replies.
   */
  behindGate(calls: Array<{ id: string; m: string; p?: unknown }>): Promise<Array<Promise<CallReply>>>
}

async function start(ssOptions: TestServerOptions['ss'] = {}): Promise<Started> {
  const store = new CountingStore()
  const gates: Array<() => void> = []
  server = await startTestServer({
    sessionStore: store,
    ss: ssOptions,
    setup(ss) {
      ss.method('stuck', () => new Promise(() => {}))
      ss.method('counter.reloaded', async (_params, ctx) => {
        await new Promise<void>((resolve, reject) => ctx.session!.reload((err) => (err ? reject(err) : resolve())))
        return { count: ctx.session!.count ?? 0 }
      })
      ss.method('gate', () => new Promise<void>((resolve) => gates.push(resolve)))
      ss.method('ping', () => 'pong', { session: false })
      ss.method('counter.poison', async (_params, ctx) => {
        ctx.session!.count = (ctx.session!.count ?? 0) + 10
        Object.assign(ctx.session!, { poisoned: true })
        await Promise.resolve()
        throw new SessionSocketError('FORBIDDEN', 'out of stock')
      })
      ss.method('signIn', async (params: { user: string }, ctx) => {
        await new Promise<void>((resolve, reject) => ctx.session!.regenerate((err) => (err ? reject(err) : resolve())))
        ctx.session!.userId = params.user
        return { sessionId: ctx.session!.id }
      })
    },
  })
  const raw = await rawRegister(server.url, { token: null, tabId: 'batch-tab' })
  raws.push(raw)
  const who = (await raw.socket.emitWithAck('ss:call', { id: 'who-0', m: 'whoami' })) as { ok: true; r: { sessionId: string } }
  let gateId = 0
  return {
    store,
    raw,
    sessionId: who.r.sessionId,
    async behindGate(calls) {
      const gate = raw.socket.emitWithAck('ss:call', { id: `gate-${++gateId}`, m: 'gate' })
      await vi.waitFor(() => expect(gates).toHaveLength(1))
      const replies = calls.map((call) => raw.socket.emitWithAck('ss:call', call) as Promise<CallReply>)
      // Packets of one socket are handled in order: once ping is answered, every call above waits.
      expect(await raw.socket.emitWithAck('ss:call', { id: `ping-${gateId}`, m: 'ping' })).toEqual({ ok: true, r: 'pong' })
      store.gets = store.sets = 0
      gates.pop()!()
      expect(await gate).toEqual({ ok: true, r: null })
      return replies
    },
  }
}

function increments(n: number, from = 0): Array<{ id: string; m: string }> {
  return Array.from({ length: n }, (_, i) => ({ id: `inc-${from + i}`, m: 'counter.increment' }))
}

describe('session batches', () => {
  it('should let each of N concurrent calls of one session see the writes of the calls before it, in call order', async () => {
    const { sessionId, behindGate, store } = await start()
    const replies = await Promise.all(await behindGate(increments(20)))
    expect(replies).toEqual(Array.from({ length: 20 }, (_, i) => ({ ok: true, r: { count: i + 1 } })))
    expect((await store.stored(sessionId))?.count).toBe(20)
  })

  it('should reload the session once before a batch and save it once after', async () => {
    const { sessionId, behindGate, store } = await start()
    const replies = await Promise.all(await behindGate(increments(20)))
    expect(replies.every((reply) => reply.ok)).toBe(true)
    expect({ gets: store.gets, sets: store.sets }).toEqual({ gets: 1, sets: 1 })
    // A later batch loads again: it sees what the one before it saved.
    const more = await Promise.all(await behindGate(increments(5, 20)))
    expect(more.at(-1)).toEqual({ ok: true, r: { count: 25 } })
    expect({ gets: store.gets, sets: store.sets }).toEqual({ gets: 1, sets: 1 })
    expect((await store.stored(sessionId))?.count).toBe(25)
  })

  it('should keep the writes of the other calls when a handler in the middle throws, and save none of its own', async () => {
    const { sessionId, behindGate, store } = await start()
    const calls = [...increments(2), { id: 'poison', m: 'counter.poison' }, ...increments(2, 2)]
    const replies = await Promise.all(await behindGate(calls))
    expect(replies).toEqual([
      { ok: true, r: { count: 1 } },
      { ok: true, r: { count: 2 } },
      { ok: false, e: { code: 'FORBIDDEN', message: 'out of stock' } },
      // The call after the failed one does not see its +10.
      { ok: true, r: { count: 3 } },
      { ok: true, r: { count: 4 } },
    ])
    const stored = await store.stored(sessionId)
    expect(stored?.count).toBe(4)
    expect(stored?.poisoned).toBeUndefined()
    expect(store.sets).toBe(1)
  })

  it('should end the batch at a regenerate: the calls after it run on the new session, with a fresh load', async () => {
    const { sessionId, behindGate, store } = await start()
    const oldId = sessionId
    const calls = [...increments(2), { id: 'sign-in', m: 'signIn', p: { user: 'ada' } }, ...increments(1, 2), { id: 'who', m: 'whoami' }]
    const replies = await Promise.all(await behindGate(calls))
    const signedIn = replies[2] as { ok: true; r: { sessionId: string } }
    expect(signedIn.ok).toBe(true)
    const newId = signedIn.r.sessionId
    expect(newId).not.toBe(oldId)
    expect(replies).toEqual([
      { ok: true, r: { count: 1 } },
      { ok: true, r: { count: 2 } },
      signedIn,
      // The new session starts empty: the count of the old one went with it.
      { ok: true, r: { count: 1 } },
      { ok: true, r: { sessionId: newId, tabId: 'batch-tab', count: 1 } },
    ])
    // The batch up to the sign-in and the batch after it: one load each.
    expect(store.gets).toBe(2)
    expect(await store.stored(oldId)).toBeFalsy()
    expect(await store.stored(newId)).toMatchObject({ count: 1, userId: 'ada' })
  })

  it('should answer every call of a batch whose save failed STORE_UNAVAILABLE, and each resend with its own reply once the save went through', async () => {
    const { raw, sessionId, behindGate, store } = await start()
    store.failingSets = 1
    const replies = await Promise.all(await behindGate(increments(3)))
    for (const reply of replies) {
      expect(reply).toEqual({ ok: false, e: { code: 'STORE_UNAVAILABLE', message: 'the session could not be saved; send the call again', retryAfter: 1000 } })
    }
    expect(store.failingSets).toBe(0)
    expect((await store.stored(sessionId))?.count).toBeUndefined()
    // Resent (same call ids, as the client does after retryAfter): not run again, answered once saved.
    for (const [i, call] of increments(3).entries()) {
      expect(await raw.socket.emitWithAck('ss:call', call)).toEqual({ ok: true, r: { count: i + 1 } })
    }
    expect((await store.stored(sessionId))?.count).toBe(3)
    // The failed save and one save again for the whole batch.
    expect(store.sets).toBe(2)
  })

  it('should save the writes of the calls before a reload() in the batch first, so that the reload sees them', async () => {
    const { sessionId, behindGate, store } = await start()
    const replies = await Promise.all(await behindGate([...increments(2), { id: 'reload', m: 'counter.reloaded' }, ...increments(1, 2)]))
    expect(replies).toEqual([
      { ok: true, r: { count: 1 } },
      { ok: true, r: { count: 2 } },
      { ok: true, r: { count: 2 } },
      { ok: true, r: { count: 3 } },
    ])
    expect((await store.stored(sessionId))?.count).toBe(3)
  })

  it('should answer the calls around a handler that never settles, the ones after it once sessionLockTimeout has passed', async () => {
    const { sessionId, behindGate, store } = await start({ sessionLockTimeout: 200 })
    let stuck: CallReply | undefined
    const started = Date.now()
    const [first, held, last] = await behindGate([...increments(1), { id: 'stuck', m: 'stuck' }, ...increments(1, 1)])
    // Closing the client at the end rejects it: it was never answered.
    held!.then((reply) => (stuck = reply), () => undefined)
    expect(await first).toEqual({ ok: true, r: { count: 1 } })
    expect(await last).toEqual({ ok: true, r: { count: 2 } })
    expect(Date.now() - started).toBeGreaterThanOrEqual(150)
    expect(stuck).toBeUndefined()
    expect((await store.stored(sessionId))?.count).toBe(2)
  })
})
