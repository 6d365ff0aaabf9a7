import { describe, expectTypeOf, it } from 'vitest'
import { createSessionSocket, memoryTabIdStorage, memoryTokenStorage, type ConnectionState, type SessionSocketEvents } from '@session-socket/browser'
import { createDurableCalls } from '@session-socket/browser/durable'
import { useSessionSocket } from '@session-socket/browser/react'
import type { ClientEventName } from '@session-socket/protocol'

interface Methods {
  'counter.increment': (params: { by: number }) => { count: number }
  'user.load': (params: { id: string }) => Promise<{ name: string }>
}

/** The app's own server-to-client events, the map the server's `createSessionSocketServer<AppEvents>()` takes too. */
interface AppEvents {
  counter: (value: number) => void
  'order:shipped': (order: { id: string }, at: number) => void
}

const offline = () => ({ autoConnect: false, tokenStorage: memoryTokenStorage(), tabIdStorage: memoryTabIdStorage(), page: null })

describe('typed calls', () => {
  it('should type params and results from an interface of methods', () => {
    const s = createSessionSocket<Methods>({ autoConnect: false, tokenStorage: memoryTokenStorage(), tabIdStorage: memoryTabIdStorage(), page: null })
    expectTypeOf(s.call<'counter.increment'>).parameter(1).toEqualTypeOf<{ by: number } | undefined>()
    // The calls really run (and fail with CLOSED once the client closes): catch them.
    const increment = s.call('counter.increment', { by: 1 })
    const load = s.call('user.load', { id: 'u' })
    for (const p of [increment, load]) p.catch(() => undefined)
    expectTypeOf(increment).resolves.toEqualTypeOf<{ count: number }>()
    expectTypeOf(load).resolves.toEqualTypeOf<{ name: string }>()
    // @ts-expect-error: not a method of Methods
    void s.call('nope').catch(() => undefined)
    s.close()
  })

  it('should accept any method name without a method map', () => {
    const s = createSessionSocket({ autoConnect: false, tokenStorage: memoryTokenStorage(), tabIdStorage: memoryTabIdStorage(), page: null })
    void s.call('anything', { at: 'all' }).catch(() => undefined)
    s.close()
  })
})

// The `@ts-expect-error` lines are what these tests test: `npm run typecheck` fails if one of
// them compiles.
describe('typed events', () => {
  it('should type app events from the app event map, and keep the client\'s own events typed', () => {
    const s = createSessionSocket<Methods, AppEvents>(offline())
    s.on('counter', (value) => expectTypeOf(value).toEqualTypeOf<number>())
    s.on('order:shipped', (order, at) => {
      expectTypeOf(order).toEqualTypeOf<{ id: string }>()
      expectTypeOf(at).toEqualTypeOf<number>()
    })
    s.on('status', (state) => expectTypeOf(state).toEqualTypeOf<ConnectionState>())
    s.on('gap', ({ from, to }) => expectTypeOf(from + to).toBeNumber())
    // @ts-expect-error: not an event of AppEvents
    s.on('countr', () => undefined)
    // @ts-expect-error: counter carries a number
    s.on('counter', (value: string) => value)
    // @ts-expect-error: status carries the connection state
    s.on('status', (state: number) => state)
    // Durable calls take a client typed with app events.
    createDurableCalls(s)
    s.close()
  })

  it('should accept any event name and arguments without an app event map', () => {
    const s = createSessionSocket(offline())
    s.on('anything', (a: number, b: string) => [a, b])
    s.on('ready', (reply) => expectTypeOf(reply.cookieRestored).toBeBoolean())
    s.close()
  })

  it("should refuse an app event map that uses the SDK's event names", () => {
    const wrong = () => {
      // @ts-expect-error: the client's own events
      createSessionSocket<Methods, { ready: (n: number) => void }>(offline())
      // @ts-expect-error: ss: names are the wire protocol's own (the client never passes them on)
      createSessionSocket<Methods, { 'ss:ended': () => void; counter: (value: number) => void }>(offline())
    }
    expectTypeOf(wrong).toBeFunction()
    // The names the protocol reserves are exactly the client's own events.
    expectTypeOf<keyof SessionSocketEvents>().toEqualTypeOf<ClientEventName>()
  })

  it('should pass the method and event maps through the React hook', () => {
    // A component, type-checked and never rendered.
    const Counter = () => {
      const { on, call } = useSessionSocket<Methods, AppEvents>()
      on('counter', (value) => expectTypeOf(value).toEqualTypeOf<number>())
      // @ts-expect-error: not an event of AppEvents
      on('countr', () => undefined)
      // @ts-expect-error: counter carries a number
      on('counter', (value: string) => value)
      // @ts-expect-error: not a method of Methods
      void call('nope')
      return null
    }
    expectTypeOf(Counter).toBeFunction()
  })
})
