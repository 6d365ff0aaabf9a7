import { describe, expect, it } from 'vitest'
import { createKeyedLock } from '../server/keyed-lock.js'

const tick = () => new Promise((resolve) => setTimeout(resolve, 5))

describe('createKeyedLock', () => {
  it('should run tasks of one key one at a time, in order', async () => {
    const lock = createKeyedLock()
    const log: string[] = []
    const task = (name: string) => async () => {
      log.push(`${name} start`)
      await tick()
      log.push(`${name} end`)
      return name
    }
    expect(await Promise.all([lock('a', task('1')), lock('a', task('2')), lock('a', task('3'))])).toEqual(['1', '2', '3'])
    expect(log).toEqual(['1 start', '1 end', '2 start', '2 end', '3 start', '3 end'])
  })

  it('should run tasks of different keys side by side', async () => {
    const lock = createKeyedLock()
    const log: string[] = []
    const task = (name: string) => async () => {
      log.push(`${name} start`)
      await tick()
      log.push(`${name} end`)
    }
    await Promise.all([lock('a', task('a')), lock('b', task('b'))])
    expect(log.slice(0, 2).sort()).toEqual(['a start', 'b start'])
  })

  it('should go on with the next task after one fails', async () => {
    const lock = createKeyedLock()
    const failed = lock('a', async () => {
      throw new Error('boom')
    })
    const next = lock('a', async () => 'next')
    await expect(failed).rejects.toThrow('boom')
    expect(await next).toBe('next')
  })
})
