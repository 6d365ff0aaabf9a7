import { describe, expect, it } from 'vitest'
import type { Logger } from '@session-socket/browser'
import { createEmitter } from '../src/emitter.js'

describe('createEmitter', () => {
  it("should call an event's listeners in the order they were added, with the event's arguments", () => {
    const events = createEmitter(() => {})
    const calls: unknown[] = []
    events.on('counter', (...args) => calls.push(['first', ...args]))
    events.on('counter', (...args) => calls.push(['second', ...args]))
    events.on('other', () => calls.push('other'))
    events.emitApp('counter', 1, 'two')
    expect(calls).toEqual([
      ['first', 1, 'two'],
      ['second', 1, 'two'],
    ])
  })

  it('should stop calling a listener once its remover is called', () => {
    const events = createEmitter(() => {})
    const calls: string[] = []
    const off = events.on('ready', () => calls.push('removed'))
    events.on('ready', () => calls.push('kept'))
    off()
    events.emit('ready')
    expect(calls).toEqual(['kept'])
  })

  it('should log a listener that throws and still call the others', () => {
    const logged: Array<[string, string, unknown]> = []
    const log: Logger = (level, message, data) => logged.push([level, message, data])
    const events = createEmitter(log)
    const failure = new Error('render failed')
    const calls: string[] = []
    events.on('status', () => {
      throw failure
    })
    events.on('status', () => calls.push('after'))
    expect(() => events.emit('status')).not.toThrow()
    expect(calls).toEqual(['after'])
    expect(logged).toEqual([['error', "a 'status' listener threw", failure]])
  })

  it('should call the listeners there were when the event came, whatever they add or remove', () => {
    const events = createEmitter(() => {})
    const calls: string[] = []
    let offSecond = () => {}
    events.on('gap', () => {
      calls.push('first')
      offSecond()
      events.on('gap', () => calls.push('added during the event'))
    })
    offSecond = events.on('gap', () => calls.push('second'))
    events.emit('gap')
    expect(calls).toEqual(['first', 'second'])
    events.emit('gap')
    expect(calls).toEqual(['first', 'second', 'first', 'added during the event'])
  })

  it("should keep application events apart from the client's own: emitApp('status') reaches no status listener", () => {
    const events = createEmitter(() => {})
    const calls: unknown[] = []
    events.on('status', (state) => calls.push(['own status', state]))
    events.on('news', (text) => calls.push(['app news', text]))
    events.emitApp('status', { status: 'ended' })
    events.emitApp('news', 'hello')
    events.emit('status', { status: 'ready' })
    expect(calls).toEqual([
      ['app news', 'hello'],
      ['own status', { status: 'ready' }],
    ])
  })
})
