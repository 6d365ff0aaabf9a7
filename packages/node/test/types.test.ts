import http from 'node:http'
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest'
import { Server } from 'socket.io'
import session from 'express-session'
import { createSessionSocketServer, type DurableSendResult, type SessionSocketServer } from '@session-socket/node'
import { EVENTS } from '@session-socket/protocol'
import type { SessionNamespace } from '../src/rooms.js'

// The `@ts-expect-error` lines are what this file tests: `npm run typecheck` fails if one of
// them compiles. Lines that would send a wrong event sit in functions that are never called.

/** The app's own server-to-client events, the map the browser's `createSessionSocket<Methods, AppEvents>()` takes too. */
interface AppEvents {
  counter: (value: number) => void
  'order:shipped': (order: { id: string }, at: number) => void
}

const servers: Server[] = []
const closers: Array<() => void> = []
afterEach(() => {
  for (const close of closers.splice(0)) close()
  for (const io of servers.splice(0)) io.close()
})

/** A real Socket.IO server on an HTTP server that never listens: emits go to empty rooms. */
function newServer<S extends Server<any, any, any, any> = Server>(): S {
  const io = new Server(http.createServer()) as S
  servers.push(io)
  return io
}

function start<S extends SessionSocketServer<any>>(ss: S): S {
  closers.push(() => ss.close())
  return ss
}

describe('typed events on the server', () => {
  it('should type toSession, toTab and toUser, plain and durable, against the app event map', async () => {
    const ss = start(createSessionSocketServer<AppEvents>(newServer(), { session: session({ secret: 's' }) }))
    ss.toSession('s1').emit('counter', 1)
    ss.toTab('t1').emit('order:shipped', { id: 'o1' }, 2)
    ss.toUser('alice').emit('counter', 3)
    const sent = ss.toSession('nobody', { durable: true }).emit('order:shipped', { id: 'o1' }, 4)
    expectTypeOf(sent).resolves.toEqualTypeOf<DurableSendResult>()
    expect(await sent).toEqual({ seqs: {}, refused: [] })

    const wrong = () => {
      // @ts-expect-error: not an event of AppEvents
      ss.toSession('s1').emit('countr', 1)
      // @ts-expect-error: counter takes a number
      ss.toTab('t1').emit('counter', '1')
      // @ts-expect-error: order:shipped takes an order and a time
      ss.toUser('alice').emit('order:shipped', { id: 'o1' })
      // @ts-expect-error: not an event of AppEvents, durable
      void ss.toSession('s1', { durable: true }).emit('countr', 1)
      // @ts-expect-error: counter takes a number, durable
      void ss.toTab('t1', { durable: true }).emit('counter', '1')
      // @ts-expect-error: the order has no id, durable
      void ss.toUser('alice', { durable: true }).emit('order:shipped', {}, 1)
    }
    expectTypeOf(wrong).toBeFunction()
  })

  it("should take the app event map from a typed Server's emit events", () => {
    const ss = start(createSessionSocketServer(newServer<Server<{}, AppEvents>>(), { session: session({ secret: 's' }) }))
    expectTypeOf(ss).toEqualTypeOf<SessionSocketServer<AppEvents>>()
    ss.toSession('s1').emit('counter', 1)
    // @ts-expect-error: not an event of AppEvents
    const wrong = () => ss.toSession('s1').emit('nope')
    expectTypeOf(wrong).toBeFunction()
  })

  it('should accept any event name and arguments without an app event map', async () => {
    const ss = start(createSessionSocketServer(newServer(), { session: session({ secret: 's' }) }))
    ss.toSession('s1').emit('anything', 1, 'two', { three: 3 })
    ss.toTab('t1').emit('else')
    expect(await ss.toUser('nobody', { durable: true }).emit('anything', [1])).toEqual({ seqs: {}, refused: [] })
  })

  it("should refuse an app event map that uses the SDK's event names", () => {
    const io = newServer()
    const options = { session: session({ secret: 's' }) }
    const wrong = () => {
      // @ts-expect-error: ss: names are the wire protocol's own
      createSessionSocketServer<{ 'ss:ended': (reason: string) => void }>(io, options)
      // @ts-expect-error: the client's own events share `on` with app events
      createSessionSocketServer<{ ready: () => void; counter: (value: number) => void }>(io, options)
      // @ts-expect-error: status, ended and gap too
      createSessionSocketServer<{ gap: () => void }>(io, options)
    }
    expectTypeOf(wrong).toBeFunction()
  })

  it("should type the SDK's own ss: emits with the protocol's event maps", () => {
    const nsp = newServer().of('/') as SessionNamespace
    nsp.to('session:s1').emit(EVENTS.ENDED, { reason: 'logout' })
    nsp.to('tab:t1').emit(EVENTS.EVENT, { seq: 1, e: 'counter', a: [1] })
    const wrong = () => {
      // @ts-expect-error: not an end reason
      nsp.to('session:s1').emit(EVENTS.ENDED, { reason: 'bye' })
      // @ts-expect-error: a durable event carries its arguments as an array
      nsp.to('tab:t1').emit(EVENTS.EVENT, { seq: 1, e: 'counter', a: 1 })
      // @ts-expect-error: not a server-to-client event of the protocol
      nsp.to('tab:t1').emit('ss:nope')
    }
    expectTypeOf(wrong).toBeFunction()
  })
})
