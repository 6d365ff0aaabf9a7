import type { IncomingMessage } from 'node:http'
import proxyaddr from 'proxy-addr'

/**
 * Which reverse proxies in front of the server are trusted to say who the client is and what
 * it asked for, as Express's `trust proxy` setting: `true` (every hop), a number of hops, an
 * address or subnet list (`'loopback'`, `'10.0.0.0/8, fd00::/8'`, or an array), or a function
 * `(address, hop) => boolean`.
 */
export type TrustProxy = boolean | number | string | readonly string[] | ((address: string, hop: number) => boolean)

/** What the server can tell about a request behind its trusted proxies. */
export interface ProxyTrust {
  /** The client's address: the nearest untrusted address in `X-Forwarded-For`, else the peer. */
  clientIp(req: IncomingMessage): string
  /** The host (and port) the browser addressed: `X-Forwarded-Host` when the peer is a trusted proxy, else `Host`. */
  host(req: IncomingMessage): string | undefined
  /** The scheme the browser used (`http` / `https`) when a trusted proxy said so in `X-Forwarded-Proto`. */
  proto(req: IncomingMessage): string | undefined
  /** True when `trustProxy` trusts no one (the default): forwarded headers are ignored. */
  readonly none: boolean
}

type Trust = (address: string, hop: number) => boolean

/** Express's compileTrust, so `trustProxy` reads as `app.set('trust proxy', …)` does. */
function compile(option: TrustProxy): Trust {
  if (typeof option === 'function') return option
  if (option === true) return () => true
  if (option === false) return () => false
  if (typeof option === 'number') {
    if (!Number.isInteger(option) || option < 0) throw new TypeError(`trustProxy: a number of hops must be an integer ≥ 0 (got ${option})`)
    return (_address, hop) => hop < option
  }
  const list = typeof option === 'string' ? option.split(',').map((item) => item.trim()) : option
  if (!Array.isArray(list) || list.some((item) => typeof item !== 'string')) {
    throw new TypeError("trustProxy must be true, a number of hops, an address list such as 'loopback' or ['10.0.0.0/8'], or a function (address, hop) => boolean")
  }
  try {
    return proxyaddr.compile(list as string[])
  } catch (err) {
    throw new TypeError(`trustProxy: ${(err as Error).message}; use addresses, subnets (10.0.0.0/8) or 'loopback', 'linklocal', 'uniquelocal'`)
  }
}

/** The first value of a header a proxy may have appended to (`a, b`). */
function firstValue(header: string | string[] | undefined): string | undefined {
  const raw = Array.isArray(header) ? header[0] : header
  if (raw === undefined) return undefined
  const first = raw.split(',')[0]!.trim()
  return first === '' ? undefined : first
}

function peer(req: IncomingMessage): string {
  return req.socket?.remoteAddress ?? 'unknown'
}

/**
 * Reads the client address, host and scheme of a request as its trusted proxies forwarded
 * them. With nothing trusted (the default) the peer address and the `Host` header are used and
 * every `X-Forwarded-*` header is ignored: anyone can send one.
 *
 * @example
 * const proxy = createProxyTrust('loopback')   // nginx on the same host
 * proxy.clientIp(req)   // '203.0.113.7' from X-Forwarded-For
 * proxy.host(req)       // 'app.example.com' from X-Forwarded-Host
 */
export function createProxyTrust(option: TrustProxy | undefined): ProxyTrust {
  if (option === undefined || option === false) {
    return { clientIp: peer, host: (req) => req.headers.host, proto: () => undefined, none: true }
  }
  const trust = compile(option)
  const fromTrustedPeer = (req: IncomingMessage) => req.socket?.remoteAddress !== undefined && trust(req.socket.remoteAddress, 0)
  return {
    clientIp: (req) => (req.socket?.remoteAddress === undefined ? 'unknown' : proxyaddr(req, trust)),
    host: (req) => (fromTrustedPeer(req) ? (firstValue(req.headers['x-forwarded-host']) ?? req.headers.host) : req.headers.host),
    proto: (req) => (fromTrustedPeer(req) ? firstValue(req.headers['x-forwarded-proto'])?.toLowerCase() : undefined),
    none: false,
  }
}

/**
 * True when `origin` is the origin the browser addressed this request to: its host (and
 * port) is the request's host as {@link ProxyTrust.host} reads it, and its scheme the one a
 * trusted proxy forwarded, if one did. A default port written out (`app.example.com:443`)
 * matches the origin without it.
 *
 * @example
 * isSameOrigin('https://app.example.com', req, createProxyTrust('loopback'))
 */
export function isSameOrigin(origin: string, req: IncomingMessage, proxy: ProxyTrust): boolean {
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false
  }
  const host = proxy.host(req)
  if (host === undefined) return false
  const proto = proxy.proto(req)
  if (proto !== undefined && `${proto}:` !== url.protocol) return false
  if (url.host === host) return true
  try {
    return url.host === new URL(`${url.protocol}//${host}`).host
  } catch {
    return false
  }
}

/**
 * Gives a bare Node request (an Engine.IO handshake: Express never saw it) the `req.secure`
 * Express would give it, from the connection or a trusted proxy's `X-Forwarded-Proto`, so that
 * express-session sets a `secure` (or `'auto'`) cookie on the handshake behind a proxy that
 * terminates TLS, as it does in the app's own routes. A request that has one keeps it.
 *
 * @example
 * markSecure(req, createProxyTrust('loopback'))   // req.secure === true behind nginx with TLS
 */
export function markSecure(req: IncomingMessage, proxy: ProxyTrust): void {
  if ('secure' in req) return
  const encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true
  Object.defineProperty(req, 'secure', { value: encrypted || proxy.proto(req) === 'https', configurable: true, enumerable: false })
}
