import { describe, expectTypeOf, it } from 'vitest'
import { createSessionSocket, memoryTabIdStorage, memoryTokenStorage } from '@session-socket/browser'

interface Methods {
  'counter.increment': (params: { by: number }) => { count: number }
  'user.load': (params: { id: string }) => Promise<{ name: string }>
}

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
