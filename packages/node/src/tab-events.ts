import createDebug from 'debug'

const debug = createDebug('session-socket:tab-events')

/** A tab joined or left this node. */
export interface TabEvent {
  sessionId: string
  tabId: string
  socketId: string
  /** Only on `tab:open`: what register decided. */
  restored?: boolean
  /** Only on `tab:close`: Socket.IO's disconnect reason. */
  reason?: string
}

/** Events of the server object (per node: each node reports the tabs it holds). */
export interface SessionSocketServerEvents {
  'tab:open': (event: TabEvent) => void
  'tab:close': (event: TabEvent) => void
}

/**
 * The listeners of `ss.on('tab:open' | 'tab:close')`. A listener that throws is logged and
 * does not keep the others from hearing the event.
 *
 * @example
 * const tabs = new TabEvents()
 * const off = tabs.on('tab:open', ({ tabId }) => console.log('open', tabId))
 * tabs.tell('tab:open', { sessionId, tabId, socketId, restored: false })
 */
export class TabEvents {
  readonly #listeners: { [E in keyof SessionSocketServerEvents]: Set<SessionSocketServerEvents[E]> } = { 'tab:open': new Set(), 'tab:close': new Set() }

  /** Adds a listener; returns a function that removes it. */
  on<E extends keyof SessionSocketServerEvents>(event: E, listener: SessionSocketServerEvents[E]): () => void {
    const set = this.#listeners[event] as Set<typeof listener>
    set.add(listener)
    return () => void set.delete(listener)
  }

  /** Calls every listener of `event`, in the order they were added. */
  tell(event: keyof SessionSocketServerEvents, payload: TabEvent): void {
    for (const listener of [...this.#listeners[event]]) {
      try {
        listener(payload)
      } catch (err) {
        debug('%s listener threw: %O', event, err)
      }
    }
  }
}
