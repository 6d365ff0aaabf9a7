import { CLIENT_EVENTS, type ClientEventName, type EndReason, type RegisterReply } from '@session-socket/protocol'
import type { ConnectionState } from './connection-state.js'
import type { Logger } from './options.js'

/** Events a SessionSocket emits, besides the application's own server events. */
export interface SessionSocketEvents {
  status: (state: ConnectionState) => void
  /** `cookieRestored`: the session cookie was set again on the way (it had been lost, expired or signed with an old secret). */
  ready: (reply: { restored: boolean; reason: RegisterReply['reason']; cookieRestored: boolean }) => void
  ended: (reason: EndReason) => void
  /** Durable events between the tab's last one and the next were lost (window passed, store forgotten): refetch state. */
  gap: (info: { from: number; to: number }) => void
}

/** A listener of one event, called with the event's arguments. */
export type Listener = (...args: any[]) => void

/** Listeners by event name: the client's own events and the application's, kept apart. */
export interface Emitter {
  /**
   * Adds a listener; returns a function that removes it. A name of the client's own events
   * (`status`, `ready`, `ended`, `gap`) listens to the client, any other to application events.
   */
  on(event: string, listener: Listener): () => void
  /** Calls the listeners of one of the client's own events, in the order they were added. */
  emit(event: ClientEventName, ...args: unknown[]): void
  /** Calls the listeners of an application event from the server; never those of the client's own events. */
  emitApp(event: string, ...args: unknown[]): void
}

/**
 * Listeners by event name. An application event is kept under its name prefixed with `>`, so a
 * server event named like one of the client's own (`status`…) cannot reach its state listeners.
 * A listener that throws is logged and the others still run: one faulty listener in the
 * application must not stop the client's own state updates.
 *
 * @example
 * const events = createEmitter(log)
 * const off = events.on('ready', () => render())
 * events.emit('ready')
 */
export function createEmitter(log: Logger): Emitter {
  const listeners = new Map<string, Set<Listener>>()
  const emit = (event: string, ...args: unknown[]) => {
    // A copy: a listener may add or remove listeners of this event.
    for (const listener of [...(listeners.get(event) ?? [])]) {
      try {
        listener(...args)
      } catch (err) {
        log('error', `a '${event}' listener threw`, err)
      }
    }
  }
  return {
    on(event, listener) {
      const key = (CLIENT_EVENTS as readonly string[]).includes(event) ? event : `>${event}`
      let set = listeners.get(key)
      if (!set) listeners.set(key, (set = new Set()))
      set.add(listener)
      return () => {
        set.delete(listener)
      }
    },
    emit,
    emitApp: (event, ...args) => emit(`>${event}`, ...args),
  }
}
