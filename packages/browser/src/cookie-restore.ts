import type { Socket } from 'socket.io-client'
import { EVENTS } from '@session-socket/protocol'
import type { ResolvedOptions } from './options.js'

/**
 * Trades a one-time restore code for the session cookie (`POST {path}/restore`), so plain
 * HTTP requests of the page see the session again. Resolves true once the cookie is set;
 * false, with a warning, when it could not be.
 *
 * @example
 * const cookieRestored = reply.restoreCode !== undefined && (await restoreCookie(reply.restoreCode, options))
 */
export async function restoreCookie(code: string, options: Pick<ResolvedOptions, 'url' | 'path' | 'fetch' | 'restoreTimeout' | 'log'>): Promise<boolean> {
  const doFetch = options.fetch ?? globalThis.fetch
  if (typeof doFetch !== 'function') {
    options.log('warn', 'no fetch available: the session cookie cannot be restored')
    return false
  }
  const base = options.url ?? globalThis.location?.href
  const url = new URL(`${options.path}/restore`, base).toString()
  try {
    const response = await doFetch(url, {
      method: 'POST',
      credentials: 'include',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ code }),
      signal: AbortSignal.timeout(options.restoreTimeout),
    })
    if (!response.ok) {
      options.log('warn', `cookie restore answered ${response.status}`)
      return false
    }
    options.log('info', 'session cookie restored')
    return true
  } catch (err) {
    options.log('warn', 'cookie restore failed', err)
    return false
  }
}

/**
 * Asks the server over the socket for a one-time restore code of the tab's session; undefined,
 * with a warning, when none came.
 *
 * @example
 * const code = await requestRestoreCode(socket, options)
 * const restored = code !== undefined && (await restoreCookie(code, options))
 */
export async function requestRestoreCode(socket: Socket, options: Pick<ResolvedOptions, 'restoreTimeout' | 'log'>): Promise<string | undefined> {
  let reply: { code?: string; error?: unknown }
  try {
    reply = await socket.timeout(options.restoreTimeout).emitWithAck(EVENTS.COOKIE)
  } catch (err) {
    options.log('warn', 'no restore code came', err)
    return undefined
  }
  if (typeof reply?.code === 'string') return reply.code
  options.log('warn', 'the server gave no restore code', reply?.error)
  return undefined
}
