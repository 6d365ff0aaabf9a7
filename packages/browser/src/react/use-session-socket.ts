import { useEffect, useMemo, useSyncExternalStore } from 'react'
import {
  createSessionSocket,
  type AnyEvents,
  type AppEventMap,
  type ConnectionState,
  type EventMap,
  type MethodMap,
  type SessionSocket,
  type SessionSocketOptions,
  type Status,
} from '../index.js'

/** Options of {@link useSessionSocket}: the client's options, plus how long an unused client lingers. */
export interface UseSessionSocketOptions extends SessionSocketOptions {
  /** How long the shared client stays open after its last component unmounts (ms). @default 1000 */
  closeDelay?: number
}

/** What {@link useSessionSocket} returns. `call` and `on` keep their identity across renders. */
export interface UseSessionSocketResult<M extends object = MethodMap, AppEvents extends EventMap & AppEventMap<AppEvents> = AnyEvents> {
  /** The current status; the component re-renders when it changes. */
  status: Status
  /** The current state with its details (the same object until it changes). */
  state: ConnectionState
  /** This tab's id ('' until the tab id storage has answered). */
  tabId: string
  /** {@link SessionSocket.call}, bound. */
  call: SessionSocket<M, AppEvents>['call']
  /** {@link SessionSocket.on}, bound: subscribe in an effect and return what it returns. */
  on: SessionSocket<M, AppEvents>['on']
  /** The shared client itself. */
  socket: SessionSocket<M, AppEvents>
}

interface Entry {
  readonly key: string
  readonly client: SessionSocket<any, any>
  readonly subscribe: (onChange: () => void) => () => void
  readonly getSnapshot: () => ConnectionState
  readonly call: SessionSocket<any, any>['call']
  readonly on: SessionSocket<any, any>['on']
  refs: number
  closeTimer: ReturnType<typeof setTimeout> | undefined
}

/**
 * One client per url + path for the whole page: every component asking for the same server
 * shares it, and a tab must not hold two sockets under one tab id (the server would replace
 * one with the other).
 */
const entries = new Map<string, Entry>()

function acquire(key: string, options: UseSessionSocketOptions): Entry {
  const cached = entries.get(key)
  if (cached && cached.client.status !== 'closed') return cached
  const { closeDelay, ...clientOptions } = options
  // Connected by the first component that mounts, not here: a render React throws away must
  // not open a socket, and a mount that comes late must find its client still usable.
  const client = createSessionSocket({ ...clientOptions, autoConnect: false })
  const entry: Entry = {
    key,
    client,
    subscribe: (onChange) => client.on('status', onChange),
    getSnapshot: () => client.state,
    call: client.call.bind(client),
    on: client.on.bind(client),
    refs: 0,
    closeTimer: undefined,
  }
  entries.set(key, entry)
  // Created during render: if React discards that render and nothing mounts, let it go.
  scheduleClose(entry, closeDelay)
  return entry
}

/**
 * Closes the client once no component has held it for `delay` ms. Deferred because
 * StrictMode unmounts and remounts every component once, and a route change unmounts one
 * user of the socket just before mounting the next: neither should reconnect.
 */
function scheduleClose(entry: Entry, delay = 1_000): void {
  clearTimeout(entry.closeTimer)
  entry.closeTimer = setTimeout(() => {
    if (entry.refs > 0) return
    entry.client.close()
    if (entries.get(entry.key) === entry) entries.delete(entry.key)
  }, delay)
}

/**
 * The session-socket client for React: re-renders on every status change. Components that
 * pass the same `url` and `path` share one client (the first one's other options win); it is
 * closed `closeDelay` ms after the last of them unmounts. `M` types `call` and `AppEvents` types
 * `on`, as for `createSessionSocket<M, AppEvents>()`.
 *
 * @example
 * function Counter() {
 *   const { status, call } = useSessionSocket({ url: 'https://app.example.com' })
 *   return <button disabled={status !== 'ready'} onClick={() => call('counter.increment', { by: 1 })}>+1</button>
 * }
 */
export function useSessionSocket<M extends object = MethodMap, AppEvents extends EventMap & AppEventMap<AppEvents> = AnyEvents>(
  options: UseSessionSocketOptions = {},
): UseSessionSocketResult<M, AppEvents> {
  const key = `${options.url ?? ''}|${options.path ?? '/session-socket'}`
  // Only url and path pick the client: the other options belong to it, set by its first user.
  const entry = useMemo(() => acquire(key, options), [key])
  const state = useSyncExternalStore(entry.subscribe, entry.getSnapshot, entry.getSnapshot)
  useEffect(() => {
    entry.refs++
    clearTimeout(entry.closeTimer)
    // The render-time timer may have closed the client before this effect ran (a slow page):
    // take it back and (re)open it. connect() is a no-op on a client already connecting.
    if (entries.get(key) !== entry) entries.set(key, entry)
    if (options.autoConnect !== false) entry.client.connect()
    return () => {
      if (--entry.refs === 0) scheduleClose(entry, options.closeDelay)
    }
  }, [entry])
  const client = entry.client as SessionSocket<M, AppEvents>
  const tabId = client.tabId
  return useMemo(
    () => ({ status: state.status, state, tabId, call: entry.call as SessionSocket<M, AppEvents>['call'], on: entry.on as SessionSocket<M, AppEvents>['on'], socket: client }),
    [state, tabId, entry],
  )
}
