import { NodeWebSocket } from 'engine.io-client'
import { absorb, cookieHeader } from '../../test-helpers/cookie-jar-proxy.js'

/**
 * One browser profile's cookie jar for Node clients. engine.io-client's own jar (Node,
 * `withCredentials`) is per Engine.IO connection and never reads the Set-Cookie of a WebSocket
 * upgrade, so a WebSocket-only client would lose its session cookie on every reconnect; a
 * browser keeps it. Both sides of every comparison use this jar.
 */
export class CookieJar {
  readonly cookies = new Map<string, string>()

  header(): string | undefined {
    return cookieHeader(this.cookies)
  }

  absorb(setCookie: string | string[] | undefined): void {
    absorb(this.cookies, setCookie)
  }
}

/**
 * engine.io-client's Node WebSocket transport, with the jar passed as the `jar` option: sends
 * its cookies on the upgrade request and keeps the Set-Cookie of the upgrade response.
 * Passed as `transports: [JarWebSocket]` (engine.io-client accepts transport classes).
 */
export class JarWebSocket extends NodeWebSocket {
  override createSocket(uri: string, protocols: string | string[] | undefined, opts: Record<string, any>): any {
    const jar = (this.opts as { jar?: CookieJar }).jar
    const cookie = jar?.header()
    // opts.headers is the caller's extraHeaders object: copy, never write into it.
    if (cookie) opts.headers = { ...opts.headers, cookie }
    const ws = super.createSocket(uri, protocols, opts)
    if (jar) ws.on('upgrade', (res: { headers: Record<string, string | string[] | undefined> }) => jar.absorb(res.headers['set-cookie']))
    return ws
  }
}

/** fetch that sends and keeps the jar's cookies, for the SDK's cookie restore request. */
export function jarFetch(jar: CookieJar): typeof fetch {
  return async (input, init = {}) => {
    const headers = new Headers(init.headers)
    const cookie = jar.header()
    if (cookie) headers.set('cookie', cookie)
    const response = await fetch(input, { ...init, headers })
    jar.absorb(response.headers.getSetCookie())
    return response
  }
}
