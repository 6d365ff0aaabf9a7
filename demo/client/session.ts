import { idbTokenStorage, sessionStorageTabId, type Logger, type SessionSocket } from '@session-socket/browser'
import type { UseSessionSocketOptions } from '@session-socket/browser/react'
import { ConnectionStory } from './connection-story.js'
import { CookieWatch } from './cookies.js'

/** `localStorage.setItem('session-socket:debug', '1')` and reload to see the client's log. */
const verbose = (() => {
  try {
    return localStorage.getItem('session-socket:debug') !== null
  } catch {
    return false
  }
})()

const logger: Logger = (level, message, data) => {
  if (level === 'warn' || level === 'error') console[level](`[session-socket] ${message}`, data ?? '')
  else if (verbose) console.log(`[session-socket] ${level} ${message}`, data ?? '')
}

/**
 * The client's options, made once for the page: the hook shares one client per url + path,
 * and the token lives in IndexedDB (shared by this browser's tabs), the tab id in
 * sessionStorage (one per tab, kept across reloads).
 */
/**
 * With several nodes behind a balancer that is not sticky, the server asks for WebSocket only
 * (long-polling requests of one Engine.IO session must all reach the same node).
 */
const transports = document.querySelector('meta[name="session-socket-transports"]')?.getAttribute('content')

export const SOCKET_OPTIONS: UseSessionSocketOptions = {
  tokenStorage: idbTokenStorage({ logger }),
  tabIdStorage: sessionStorageTabId({ logger }),
  logger,
  ...(transports ? { socketOptions: { transports: transports.split(',') as Array<'websocket' | 'polling'> } } : {}),
}

const stories = new WeakMap<SessionSocket<any>, ConnectionStory>()

/** The one ConnectionStory of a client, made on first use and kept for the life of the page. */
export function storyOf(client: SessionSocket<any>): ConnectionStory {
  let story = stories.get(client)
  if (!story) stories.set(client, (story = new ConnectionStory(client)))
  return story
}

const cookieWatches = new WeakMap<SessionSocket<any>, CookieWatch>()

/** The one CookieWatch of a client, made on first use and kept for the life of the page. */
export function cookiesOf(client: SessionSocket<any>): CookieWatch {
  let watch = cookieWatches.get(client)
  if (!watch) cookieWatches.set(client, (watch = new CookieWatch(client)))
  return watch
}

/**
 * Sets the session cookie again after a plain HTTP request found no session behind it (the
 * cookie expired in the browser while socket activity kept the session alive, or was
 * deleted). Connected: `restoreCookie()` asks the server for a one-time code over the socket
 * and trades it for the cookie, without reconnecting. Not connected: the next register puts
 * the cookie back on its way, so this waits for that `ready`.
 */
export async function restoreSessionCookie(client: SessionSocket<any>, story: ConnectionStory, timeoutMs = 10_000): Promise<void> {
  const result = await cookiesOf(client).check()
  if (result.kept) {
    story.cookieRestored()
    return
  }
  if (result.reason === 'not-stored') throw new Error('this browser does not keep the session cookie (blocked, or a proxy strips Set-Cookie): use the socket')
  // Not ready (or the socket dropped meanwhile): the next register puts the cookie back on its way.
  if (client.status === 'ready') throw new Error('the session cookie could not be restored; reload the page')
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => {
      clearTimeout(timer)
      offReady()
      offEnded()
      if (err) reject(err)
      else resolve()
    }
    const timer = setTimeout(() => done(new Error(`not connected again within ${timeoutMs / 1000} s`)), timeoutMs)
    const offReady = client.on('ready', () => done())
    const offEnded = client.on('ended', (reason) => done(new Error(`the session has ended (${reason})`)))
  })
}
