import { afterEach, describe, expect, it } from 'vitest'
import type { Socket as ServerSocket } from 'socket.io'
import { EVENTS } from '@session-socket/protocol'
import { createDurableEvents } from '../src/durable-events.js'
import { connectTo, startBareServer, type BareServer } from './helpers/bare-server.js'
import { sleep } from './helpers/fake-page.js'

let server: BareServer | undefined

afterEach(async () => {
  await server?.close()
  server = undefined
})

/**
 * A tab's durable events over a real Socket.IO connection; the test plays the server. `seen`
 * lists what the tab applied (`name:arg`) and the gaps it reported, in order; `acks` the seqs
 * the tab acknowledged.
 */
async function start(onApplied: () => void = () => {}) {
  server = await startBareServer()
  const client = server.client()
  const seen: string[] = []
  const durable = createDurableEvents(
    client,
    (event, ...args) => {
      seen.push(`${event}:${args.join(',')}`)
      onApplied()
    },
    (gap) => {
      seen.push(`gap ${JSON.stringify(gap)}`)
      onApplied()
    },
  )
  const acks: number[] = []
  const open = async () => {
    const socket = await connectTo(server!, client)
    socket.on(EVENTS.ACK, (ack: { seq: number }) => acks.push(ack.seq))
    return socket
  }
  return { client, durable, seen, acks, open }
}

const registered = (socket: ServerSocket, seq: number, gap = false) => socket.emit(EVENTS.REGISTERED, { seq, gap })
const event = (socket: ServerSocket, seq: number, name = 'counter', ...args: unknown[]) => socket.emit(EVENTS.EVENT, { seq, e: name, a: args.length ? args : [seq] })

describe('createDurableEvents', () => {
  it('should apply events in seq order, holding back one that came before its predecessor', async () => {
    const { seen, open } = await start()
    const socket = await open()
    registered(socket, 5)
    event(socket, 7)
    event(socket, 6)
    event(socket, 8)
    await expect.poll(() => seen).toEqual(['counter:6', 'counter:7', 'counter:8'])
  })

  it('should hold events back until the register reply, then apply only those after its position', async () => {
    const { seen, durable, open } = await start()
    const socket = await open()
    expect(durable.seq).toBeUndefined()
    event(socket, 5)
    event(socket, 6)
    await sleep(50)
    expect(seen).toEqual([])
    registered(socket, 5)
    await expect.poll(() => seen).toEqual(['counter:6'])
    expect(durable.seq).toBe(6)
  })

  it('should apply an event once, however often it comes', async () => {
    const { seen, open } = await start()
    const socket = await open()
    registered(socket, 0)
    event(socket, 1)
    event(socket, 1)
    event(socket, 2)
    event(socket, 1)
    event(socket, 3)
    await expect.poll(() => seen).toEqual(['counter:1', 'counter:2', 'counter:3'])
  })

  it('should ignore a malformed event and apply the next good one', async () => {
    const { seen, open } = await start()
    const socket = await open()
    registered(socket, 0)
    socket.emit(EVENTS.EVENT, { seq: '1', e: 'counter', a: [] })
    socket.emit(EVENTS.EVENT, { seq: 1, e: 7, a: [] })
    socket.emit(EVENTS.EVENT, { seq: 1, e: 'counter', a: 'not a list' })
    socket.emit(EVENTS.EVENT, null)
    event(socket, 1, 'counter', 'good')
    await expect.poll(() => seen).toEqual(['counter:good'])
  })

  it('should report the gap the server says, from the last event applied to the new position', async () => {
    const { client, seen, durable, open } = await start()
    let socket = await open()
    // A fresh page has nothing to lose: a gap on its first reply starts at that reply's position.
    registered(socket, 3, true)
    event(socket, 4)
    await expect.poll(() => seen).toEqual(['gap {"from":3,"to":3}', 'counter:4'])
    client.disconnect()
    socket = await open()
    registered(socket, 10, true)
    event(socket, 11)
    await expect.poll(() => seen).toEqual(['gap {"from":3,"to":3}', 'counter:4', 'gap {"from":4,"to":10}', 'counter:11'])
    expect(durable.seq).toBe(11)
  })

  it('should judge events after a reconnect against the new register reply, not the old position', async () => {
    const { client, seen, open } = await start()
    let socket = await open()
    registered(socket, 0)
    event(socket, 1)
    await expect.poll(() => seen).toEqual(['counter:1'])
    client.disconnect()
    socket = await open()
    // Sent before the reply on the new connection: it waits for it, then is applied.
    event(socket, 3)
    registered(socket, 2)
    await expect.poll(() => seen).toEqual(['counter:1', 'counter:3'])
  })

  it('should move to a stream the server started anew, reporting the gap unless the tab had no events', async () => {
    const { seen, open } = await start()
    const socket = await open()
    registered(socket, 0)
    // Nothing was applied yet: moving to the new block loses nothing.
    event(socket, 1_000_001)
    await expect.poll(() => seen).toEqual(['counter:1000001'])
    event(socket, 1_000_002)
    event(socket, 3_000_001)
    await expect.poll(() => seen).toEqual(['counter:1000001', 'counter:1000002', 'gap {"from":1000002,"to":3000000}', 'counter:3000001'])
  })

  it('should acknowledge a burst of events once, with the last one', async () => {
    const { seen, acks, open } = await start()
    const socket = await open()
    registered(socket, 0)
    for (let seq = 1; seq <= 5; seq++) event(socket, seq)
    await expect.poll(() => acks).toEqual([5])
    expect(seen).toHaveLength(5)
    event(socket, 6)
    await expect.poll(() => acks).toEqual([5, 6])
  })

  it('should not acknowledge after stop', async () => {
    // Stopped just after the event is applied, before its ack is due.
    const { seen, acks, durable, open } = await start(() => queueMicrotask(() => durable.stop()))
    const socket = await open()
    registered(socket, 0)
    event(socket, 1)
    await expect.poll(() => seen).toEqual(['counter:1'])
    await sleep(100)
    expect(acks).toEqual([])
  })

  it('should hold back at most 10,000 events waiting for their predecessor, and still take the predecessor', async () => {
    const { seen, open } = await start()
    const socket = await open()
    registered(socket, 0)
    // 2 … 10,001 wait for 1; 10,002 finds the buffer full and is dropped.
    for (let seq = 2; seq <= 10_002; seq++) event(socket, seq)
    // 1, the one they wait for, is taken although the buffer is full, and releases them.
    event(socket, 1)
    await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(10_001)
    expect(seen[0]).toBe('counter:1')
    expect(seen.at(-1)).toBe('counter:10001')
  })

  it('should acknowledge again on a new connection after stop', async () => {
    // Stopped (the client closed) just after 2 is applied, before its ack is due.
    const { client, seen, acks, durable, open } = await start(() => {
      if (seen.at(-1) === 'counter:2') queueMicrotask(() => durable.stop())
    })
    const first = await open()
    registered(first, 0)
    event(first, 1)
    await expect.poll(() => acks).toEqual([1])
    event(first, 2)
    await expect.poll(() => seen).toHaveLength(2)
    client.disconnect()
    // Connected again: 3 is applied and acknowledged, with no ack of 2 on the way.
    const again = await open()
    registered(again, 2)
    event(again, 3)
    await expect.poll(() => seen).toEqual(['counter:1', 'counter:2', 'counter:3'])
    await expect.poll(() => acks).toEqual([1, 3])
  })
})
