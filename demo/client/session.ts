import { idbTokenStorage, sessionStorageTabId, type Logger, type SessionSocket } from '@session-socket/browser'
import type { UseSessionSocketOptions } from '@session-socket/browser/react'
import { ConnectionStory, createRestoreWatch } from './connection-story.js'

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

const restores = createRestoreWatch()

/**
 * The client's options, made once for the page: the hook shares one client per url + path,
 * and the token lives in IndexedDB (shared by this browser's tabs), the tab id in
 * sessionStorage (one per tab, kept across reloads).
 */
export const SOCKET_OPTIONS: UseSessionSocketOptions = {
  tokenStorage: idbTokenStorage({ logger }),
  tabIdStorage: sessionStorageTabId({ logger }),
  fetch: restores.fetch,
  logger,
}

const stories = new WeakMap<SessionSocket<any>, ConnectionStory>()

/** The one ConnectionStory of a client, made on first use and kept for the life of the page. */
export function storyOf(client: SessionSocket<any>): ConnectionStory {
  let story = stories.get(client)
  if (!story) stories.set(client, (story = new ConnectionStory(client, restores)))
  return story
}

/**
 * Reconnects the socket now and resolves on the next ready. Register restores the session
 * cookie when the request's cookie does not carry the session (it expired in the browser while
 * socket activity kept the session alive, or was deleted): plain HTTP works again after it.
 */
export function reconnect(client: SessionSocket<any>, timeoutMs = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
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
    client.socket.disconnect()
    client.connect()
  })
}
