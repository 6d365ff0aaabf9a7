import { afterEach, describe, expect, it } from 'vitest'
import { SessionSocketError, type CallReply, type CallRequest } from '@session-socket/protocol'
import { EVENTS } from '@session-socket/protocol'
import { createOutbox } from '../src/outbox.js'
import { connectTo, startBareServer, type BareServer } from './helpers/bare-server.js'
import { sleep } from './helpers/fake-page.js'

let server: BareServer | undefined
let outboxes: Array<ReturnType<typeof createOutbox>> = []

afterEach(async () => {
  for (const outbox of outboxes) outbox.rejectAll(new SessionSocketError('CLOSED', 'the test ended'))
  outboxes = []
  await server?.close()
  server = undefined
})

type Answer = (request: CallRequest, ack: (reply: CallReply) => void) => void

/**
 * An outbox over a real Socket.IO connection; the test plays the server, answering calls with
 * `answer` (default: echo the params). `received` lists `method:id` of every call that arrived.
 */
async function start(answer: Answer = (request, ack) => ack({ ok: true, r: request.p }), { limit = 100, connect = true } = {}) {
  server = await startBareServer()
  const client = server.client()
  const state = { ready: true }
  const outbox = createOutbox(limit, client, () => state.ready)
  outboxes.push(outbox)
  const received: CallRequest[] = []
  const open = async () => {
    const socket = await connectTo(server!, client)
    socket.on(EVENTS.CALL, (request: CallRequest, ack: (reply: CallReply) => void) => {
      received.push(request)
      answer(request, ack)
    })
  }
  if (connect) await open()
  return { client, outbox, state, received, open }
}

async function rejection(promise: Promise<unknown>): Promise<SessionSocketError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  )
  expect(error).toBeInstanceOf(SessionSocketError)
  return error as SessionSocketError
}

const never: Answer = () => {}

describe('createOutbox', () => {
  it('should send a call at once when ready and resolve with the answer', async () => {
    const { outbox, received } = await start()
    expect(await outbox.add('log', { n: 1 }, 1000, {})).toEqual({ n: 1 })
    expect(received).toEqual([{ id: expect.stringMatching(/^[\w-]{11,}$/), m: 'log', p: { n: 1 } }])
  })

  it('should keep calls made while not ready and send them on flush, oldest first', async () => {
    const { outbox, state, received } = await start()
    state.ready = false
    const results = [1, 2, 3].map((n) => outbox.add('log', n, 1000, {}))
    await sleep(50)
    expect(received).toEqual([])
    state.ready = true
    outbox.flush()
    expect(await Promise.all(results)).toEqual([1, 2, 3])
    expect(received.map((request) => request.p)).toEqual([1, 2, 3])
  })

  it('should send again, with the same id, the calls that were sent on a connection that dropped', async () => {
    let answered = 0
    const { client, outbox, received, open } = await start((request, ack) => {
      // The first connection never answers; the second does.
      if (answered++ > 0) ack({ ok: true, r: request.p })
    })
    const call = outbox.add('log', 'once', 5000, {})
    await expect.poll(() => received).toHaveLength(1)
    client.disconnect()
    outbox.markAllUnsent()
    await open()
    outbox.flush()
    expect(await call).toBe('once')
    expect(received.map((request) => request.id)).toEqual([received[0]!.id, received[0]!.id])
  })

  it('should refuse a call with OUTBOX_FULL when the limit is reached', async () => {
    const { outbox } = await start(never, { limit: 2 })
    void outbox.add('hang', 1, 5000, {}).catch(() => undefined)
    void outbox.add('hang', 2, 5000, {}).catch(() => undefined)
    const full = await rejection(outbox.add('hang', 3, 5000, {}))
    expect(full).toMatchObject({ code: 'OUTBOX_FULL', message: '2 calls are already waiting; raise maxQueue or wait for the connection' })
  })

  it('should refuse a call whose id is already waiting, and take it again once that call is answered', async () => {
    let release: () => void = () => {}
    const { outbox, received } = await start((request, ack) => {
      if (request.p === 'held') release = () => ack({ ok: true, r: 'held' })
      else ack({ ok: true, r: request.p })
    })
    const first = outbox.add('log', 'held', 5000, { id: 'order-1' })
    expect(await rejection(outbox.add('log', 'twin', 5000, { id: 'order-1' }))).toMatchObject({ code: 'BAD_REQUEST', message: 'a call with id order-1 is already waiting' })
    await expect.poll(() => received).toHaveLength(1)
    release()
    expect(await first).toBe('held')
    expect(await outbox.add('log', 'again', 5000, { id: 'order-1' })).toBe('again')
  })

  it('should fail a call with TIMEOUT when the server does not answer in time, and answer later calls', async () => {
    let hang = true
    const { outbox } = await start((request, ack) => {
      if (!hang) ack({ ok: true, r: request.p })
    })
    const started = Date.now()
    expect(await rejection(outbox.add('hang', undefined, 100, {}))).toMatchObject({ code: 'TIMEOUT', message: "'hang' got no answer in 100 ms" })
    expect(Date.now() - started).toBeLessThan(1000)
    hang = false
    expect(await outbox.add('log', 'fine', 1000, {})).toBe('fine')
  })

  it('should time out each call at its own deadline, a short one made after a long one first', async () => {
    const { outbox } = await start((request, ack) => {
      if (request.m === 'log') ack({ ok: true, r: request.p })
    })
    const started = Date.now()
    const long = outbox.add('hang', undefined, 600, {})
    const short = rejection(outbox.add('hang', undefined, 100, {}))
    const never = outbox.add('hang', undefined, Infinity, {})
    const answered = outbox.add('log', 'answered', 150, {})
    expect((await short).code).toBe('TIMEOUT')
    expect(Date.now() - started).toBeLessThan(500)
    expect(await answered).toBe('answered')
    expect(await rejection(long)).toMatchObject({ code: 'TIMEOUT', message: "'hang' got no answer in 600 ms" })
    expect(Date.now() - started).toBeGreaterThanOrEqual(590)
    // A call with no timeout is still waiting; it fails only when the outbox is emptied.
    const settledAt = never.then(
      () => Date.now() - started,
      () => Date.now() - started,
    )
    await sleep(100)
    outboxes[0]!.rejectAll(new SessionSocketError('CLOSED', 'the client was closed'))
    expect(await settledAt).toBeGreaterThanOrEqual(700)
    expect((await rejection(never)).code).toBe('CLOSED')
  })

  it('should time out calls added after it was emptied', async () => {
    const { outbox } = await start(never)
    // The first call's deadline comes before the second's: the one timer must not be left
    // thinking it is armed for it.
    const first = rejection(outbox.add('hang', undefined, 300, {}))
    outbox.rejectAll(new SessionSocketError('CLOSED', 'the client was closed'))
    expect((await first).code).toBe('CLOSED')
    const started = Date.now()
    expect((await rejection(outbox.add('hang', undefined, 400, {}))).code).toBe('TIMEOUT')
    expect(Date.now() - started).toBeLessThan(1500)
  })

  it('should count the timeout from add, time spent waiting for the connection included', async () => {
    const { outbox } = await start(never, { connect: false })
    expect((await rejection(outbox.add('log', undefined, 50, {}))).code).toBe('TIMEOUT')
  })

  it('should send a call again with the same id after retryAfter when the server says RATE_LIMITED or IN_PROGRESS', async () => {
    const replies: CallReply[] = [
      { ok: false, e: { code: 'RATE_LIMITED', message: 'slow down', retryAfter: 50 } },
      { ok: false, e: { code: 'IN_PROGRESS', message: 'still running', retryAfter: 50 } },
    ]
    const { outbox, received } = await start((request, ack) => ack(replies.shift() ?? { ok: true, r: 'done' }))
    const started = Date.now()
    expect(await outbox.add('pay', 'order', 5000, {})).toBe('done')
    expect(Date.now() - started).toBeGreaterThanOrEqual(95)
    expect(received.map((request) => request.id)).toEqual(Array(3).fill(received[0]!.id))
  })

  it('should fail a call at once with an error the server does not ask to retry', async () => {
    const { outbox, received } = await start((request, ack) => ack({ ok: false, e: { code: 'NOT_FOUND', message: 'no method pay' } }))
    expect(await rejection(outbox.add('pay', undefined, 5000, {}))).toMatchObject({ code: 'NOT_FOUND', message: 'no method pay' })
    expect(received).toHaveLength(1)
  })

  it('should not send again a call that timed out while it waited to retry', async () => {
    const { outbox, received } = await start((request, ack) => ack({ ok: false, e: { code: 'RATE_LIMITED', message: 'slow down', retryAfter: 100 } }))
    expect((await rejection(outbox.add('log', 'late', 40, {}))).code).toBe('TIMEOUT')
    await sleep(250)
    expect(received).toHaveLength(1)
  })

  it('should not retry while not ready, and leave the call for the next flush', async () => {
    const { outbox, state, received } = await start((request, ack) => {
      if (received.length > 1) return ack({ ok: true, r: request.p })
      // The client is registering again as this answer comes.
      state.ready = false
      ack({ ok: false, e: { code: 'UNREGISTERED', message: 'register first', retryAfter: 20 } })
    })
    const call = outbox.add('log', 'later', 5000, {})
    await expect.poll(() => state.ready).toBe(false)
    await sleep(100)
    expect(received).toHaveLength(1)
    state.ready = true
    outbox.flush()
    expect(await call).toBe('later')
  })

  it('should fail a call with CANCELLED when its signal aborts, and never send it', async () => {
    const { outbox, state, received } = await start()
    state.ready = false
    const controller = new AbortController()
    const aborted = outbox.add('log', 'aborted', 5000, { signal: controller.signal })
    controller.abort()
    expect((await rejection(aborted)).code).toBe('CANCELLED')
    expect((await rejection(outbox.add('log', 'pre-aborted', 5000, { signal: AbortSignal.abort() }))).code).toBe('CANCELLED')
    state.ready = true
    outbox.flush()
    expect(await outbox.add('log', 'sent', 5000, {})).toBe('sent')
    expect(received.map((request) => request.p)).toEqual(['sent'])
  })

  it('should take its abort listener off a long-lived signal once the call settles', async () => {
    const { outbox } = await start((request, ack) => {
      if (request.m === 'log') ack({ ok: true, r: request.p })
    })
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
    for (let i = 0; i < 5; i++) expect(await outbox.add('log', i, 5000, { signal: controller.signal })).toBe(i)
    expect((await rejection(outbox.add('hang', undefined, 50, { signal: controller.signal }))).code).toBe('TIMEOUT')
    expect(listening.size).toBe(0)
    // Aborting now touches no call of the past.
    const pending = outbox.add('hang', undefined, 5000, { signal: controller.signal })
    expect(listening.size).toBe(1)
    controller.abort()
    expect((await rejection(pending)).code).toBe('CANCELLED')
    expect(listening.size).toBe(0)
  })
})
