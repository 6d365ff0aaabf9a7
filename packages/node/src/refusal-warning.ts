import type { IncomingMessage } from 'node:http'
import type { AllowedOrigins } from './handshake.js'
import type { ProxyTrust } from './trust-proxy.js'

/** Where a refusal's warning goes. @default console.warn */
export type Warn = (message: string) => void

/**
 * What to tell the deployer about a handshake refused for its Origin: what the server
 * compared, and the likely fix. Behind a reverse proxy that does not forward the browser's
 * Host (nginx's default is the upstream name; `proxy_set_header Host $host` drops the port),
 * every handshake of the site is refused, and this is the first thing to check.
 *
 * @example
 * refusalHint(req, 'same-origin', createProxyTrust(undefined))
 * // "refused a Socket.IO handshake from Origin http://127.0.0.1:8080: it is not the host the server was asked for (127.0.0.1) …"
 */
export function refusalHint(req: IncomingMessage, allowed: AllowedOrigins, proxy: ProxyTrust): string {
  const origin = req.headers.origin ?? ''
  const head = `session-socket: refused a Socket.IO handshake from Origin ${origin}`
  const tail = 'If that origin is not yours, this is the Origin check doing its job. Logged once; DEBUG=session-socket:security logs every refusal.'
  if (allowed !== 'same-origin') {
    return `${head}: it is not in allowedOrigins. If it is your site's origin, add it to allowedOrigins. ${tail}`
  }
  const seen = proxy.host(req) ?? '(none)'
  const forwarded = req.headers['x-forwarded-host']
  const why =
    forwarded !== undefined && proxy.host(req) !== String(forwarded).split(',')[0]!.trim()
      ? ` X-Forwarded-Host (${String(forwarded)}) came from ${req.socket?.remoteAddress ?? 'an unknown address'}, which trustProxy does not trust.`
      : ''
  return (
    `${head}: it is not the host the server was asked for (${seen}).${why} ` +
    'Behind a reverse proxy, forward the browser\'s Host header (nginx: proxy_set_header Host $http_host;), ' +
    'or forward X-Forwarded-Host and X-Forwarded-Proto and set trustProxy to the proxy\'s address, or list the origin in allowedOrigins. ' +
    tail
  )
}

/**
 * Warns once per server, at the first handshake refused for its Origin, with the likely fix:
 * a misconfigured proxy refuses every handshake, and the browser can only say its socket does
 * not connect. A console warning rather than a debug namespace, so a deployer sees it without
 * knowing to turn debugging on.
 *
 * @example
 * const warnRefusal = createRefusalWarning('same-origin', proxy)
 * createHandshakeMiddleware({ …, onOriginRefused: warnRefusal })
 */
export function createRefusalWarning(allowed: AllowedOrigins, proxy: ProxyTrust, warn: Warn = (message) => console.warn(message)): (req: IncomingMessage) => void {
  let warned = false
  return (req) => {
    if (warned) return
    warned = true
    warn(refusalHint(req, allowed, proxy))
  }
}
