import { reservedEventName } from '@session-socket/protocol'

/**
 * Throws when `event` cannot be sent to tabs as an application event: a name starting with
 * `ss:` (the protocol's) or one of the browser SDK's own events (`status`, `ready`, `ended`,
 * `gap`), which would reach the client's state listeners with a foreign payload.
 *
 * @example
 * checkAppEvent('ss.toSession(…).emit', 'status') // throws: '"status" is a reserved event name…'
 */
export function checkAppEvent(where: string, event: unknown): void {
  if (typeof event !== 'string' || event.length === 0) throw new TypeError(`${where}: event must be a non-empty string (got ${JSON.stringify(event)})`)
  const reason = reservedEventName(event)
  if (reason) throw new Error(`${where}('${event}'): "${event}" is a reserved event name: ${reason}; give the event another name, e.g. "app:${event}"`)
}

/** A Socket.IO broadcast operator: what `nsp.to(room)` returns, and every chained call of it. */
interface Operator {
  emit(...args: any[]): unknown
  except(...args: any[]): unknown
}

function isOperator(value: unknown): value is Operator {
  return typeof (value as Operator | null)?.emit === 'function' && typeof (value as Operator).except === 'function'
}

/**
 * `operator` (from `nsp.to(room)`) with its `emit` and `emitWithAck` refusing reserved event
 * names, through any chain (`.to()`, `.except()`, `.volatile`, `.timeout()`…), as Socket.IO
 * refuses its own reserved names.
 *
 * @example
 * const toSession = (id: string) => guardAppEvents(nsp.to(sessionRoom(id)), 'ss.toSession(…).emit')
 * toSession(id).volatile.emit('ready') // throws
 */
export function guardAppEvents<T extends object>(operator: T, where: string): T {
  return new Proxy(operator, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target)
      if (prop === 'emit') {
        return (event: unknown, ...args: unknown[]) => {
          checkAppEvent(where, event)
          return (value as (...a: unknown[]) => unknown).call(target, event, ...args)
        }
      }
      if (prop === 'emitWithAck') {
        // As Socket.IO's own: a promise, so a refused name rejects it.
        return async (event: unknown, ...args: unknown[]) => {
          checkAppEvent(where, event)
          return (value as (...a: unknown[]) => unknown).call(target, event, ...args)
        }
      }
      // Getters (`volatile`, `local`) return a new operator.
      if (isOperator(value)) return guardAppEvents(value, where)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        const out = (value as (...a: unknown[]) => unknown).apply(target, args)
        return isOperator(out) ? guardAppEvents(out, where) : out
      }
    },
  })
}
