import type { Socket } from 'socket.io-client'
import { EVENTS } from '@session-socket/protocol'
import type { ResolvedOptions } from './options.js'

/**
 * What a cookie restore did: `restored` (the cookie now names the code's session), `other` (the
 * browser's cookie names another live session, a sign-in: nothing was set, the tab should
 * rejoin to follow it), `failed`.
 *
 * @example
 * if ((await restoreCookie(code, options)) === 'other') rejoin()
 */
export type RestoreOutcome = 'restored' | 'other' | 'failed'

/**
 * Trades a one-time restore code for the session's cookie (`POST {path}/restore`), so plain
 * HTTP requests of the page see the session again. Never replaces a cookie that names another
 * live, non-empty session: the server answers `{ restored: false, reason: 'cookie-session' }`
 * instead (`other`). `failed`, with a warning, when it could not be done.
 *
 * @example
 * const outcome = reply.restoreCode === undefined ? 'failed' : await restoreCookie(reply.restoreCode, options)
 */
export async function restoreCookie(code: string, options: Pick<ResolvedOptions, 'url' | 'path' | 'fetch' | 'restoreTimeout' | 'log'>): Promise<RestoreOutcome> {
  const doFetch = options.fetch ?? globalThis.fetch
  if (typeof doFetch !== 'function') {
    options.log('warn', 'no fetch available: the session cookie cannot be restored')
    return 'failed'
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
      return 'failed'
    }
    // 204: set (or already so); 200 is only ever { restored: false, reason: 'cookie-session' }.
    if (response.status === 200) {
      options.log('info', 'cookie names another session')
      return 'other'
    }
    options.log('info', 'session cookie restored')
    return 'restored'
  } catch (err) {
    options.log('warn', 'cookie restore failed', err)
    return 'failed'
  }
}

/**
 * Asks the server over the socket for a one-time restore code of the tab's session; undefined,
 * with a warning, when none came.
 *
 * @example
 * const code = await requestRestoreCode(socket, options)
 * const outcome = code === undefined ? 'failed' : await restoreCookie(code, options)
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
