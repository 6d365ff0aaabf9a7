import type { Socket } from 'socket.io-client'
import { EVENTS } from '@session-socket/protocol'
import type { ResolvedOptions } from './options.js'

/**
 * What a cookie restore did: `restored` (the cookie now names the code's session), `other` (the
 * browser's cookie names another live session, a sign-in: nothing was set, the tab should
 * rejoin to follow it), `failed`.
 *
 * @example
 * if ((await restoreCookie(code, options)).outcome === 'other') rejoin()
 */
export type RestoreOutcome = 'restored' | 'other' | 'failed'

/**
 * What `restoreCookie()` found: `kept` once the browser sent the restored cookie back.
 * Otherwise why not: `not-ready` (the socket is not registered; the next register restores the
 * cookie on its way), `failed` (no code came, or the restore request failed or was refused),
 * `other-session` (the browser's cookie names another live session, a sign-in: nothing was
 * replaced, and the tab rejoins to follow it), or `not-stored` (the server set the cookie and
 * the browser did not keep it: blocked cookies, or a proxy that strips Set-Cookie; HTTP
 * requests of this page will not carry the session).
 */
export type CookieRestoreResult = { kept: true } | { kept: false; reason: 'not-ready' | 'failed' | 'other-session' | 'not-stored' }

/** The restore answer's header naming the restored session, as `GET {path}/cookie` names the cookie's. */
const CHECK_HEADER = 'Session-Socket-Check'

type RestoreOptions = Pick<ResolvedOptions, 'url' | 'path' | 'fetch' | 'restoreTimeout' | 'log'>

/** `{path}/{route}` on the server's origin (the url's path is a namespace, not a prefix). */
function routeUrl(options: RestoreOptions, route: string): string {
  const page = globalThis.location?.href
  const base = options.url === undefined ? page : new URL(options.url, page).href
  return new URL(`${options.path}/${route}`, base).toString()
}

/**
 * Trades a one-time restore code for the session's cookie (`POST {path}/restore`), so plain
 * HTTP requests of the page see the session again. Never replaces a cookie that names another
 * live, non-empty session: the server answers `{ restored: false, reason: 'cookie-session' }`
 * instead (`other`). `failed`, with a warning, when it could not be done.
 *
 * @example
 * const { outcome } = await restoreCookie(reply.restoreCode, options)
 */
export async function restoreCookie(code: string, options: RestoreOptions): Promise<{ outcome: RestoreOutcome; response?: Response }> {
  const response = await send(options, 'restore', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code }) })
  if (!response) return { outcome: 'failed' }
  // 204: set (or already so); 200 is only ever { restored: false, reason: 'cookie-session' }.
  if (response.status === 200) {
    options.log('info', 'cookie names another session')
    return { outcome: 'other' }
  }
  options.log('info', 'session cookie restored')
  return { outcome: 'restored', response }
}

/**
 * Restores the cookie as {@link restoreCookie}, then asks `GET {path}/cookie` which session
 * the browser's cookie names now: one more request, made only when the app asks.
 *
 * @example
 * const result = await restoreAndCheckCookie(code, options)   // { kept: false, reason: 'not-stored' } behind a Set-Cookie-stripping proxy
 */
export async function restoreAndCheckCookie(code: string, options: RestoreOptions): Promise<CookieRestoreResult> {
  const { outcome, response } = await restoreCookie(code, options)
  if (outcome !== 'restored') return { kept: false, reason: outcome === 'other' ? 'other-session' : 'failed' }
  const expected = response?.headers.get(CHECK_HEADER)
  // A server that does not say which session it restored cannot be checked: take its word.
  if (expected === null || expected === undefined) return { kept: true }
  const answer = await send(options, 'cookie', { headers: { Accept: 'application/json' } })
  if (!answer) return { kept: false, reason: 'failed' }
  if (((await answer.json().catch(() => ({}))) as { session?: unknown }).session === expected) return { kept: true }
  options.log('warn', 'the browser did not keep the session cookie')
  return { kept: false, reason: 'not-stored' }
}

/** A request to `{path}/{route}` with the browser's cookies: the response if 2xx, else undefined with a warning. */
async function send(options: RestoreOptions, route: 'restore' | 'cookie', init: RequestInit): Promise<Response | undefined> {
  const doFetch = options.fetch ?? globalThis.fetch
  if (typeof doFetch !== 'function') {
    options.log('warn', 'no fetch available: the session cookie cannot be restored')
    return undefined
  }
  try {
    const response = await doFetch(routeUrl(options, route), { ...init, credentials: 'include', signal: AbortSignal.timeout(options.restoreTimeout) })
    if (response.ok) return response
    options.log('warn', `cookie ${route} answered ${response.status}`)
  } catch (err) {
    options.log('warn', `cookie ${route} failed`, err)
  }
  return undefined
}

/**
 * Asks the server over the socket for a one-time restore code of the tab's session; undefined,
 * with a warning, when none came.
 *
 * @example
 * const code = await requestRestoreCode(socket, options)
 * const result = code === undefined ? { kept: false, reason: 'failed' } : await restoreAndCheckCookie(code, options)
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
