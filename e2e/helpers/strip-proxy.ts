import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { pipeUpgrade } from './pipe-upgrade.js'

/** One request the proxy forwarded, and what it did with the response's Set-Cookie. */
export interface ProxiedExchange {
  method: string
  /** Path and query, as the browser asked. */
  url: string
  /** `upgrade`: a WebSocket upgrade, passed through as raw bytes. */
  kind: 'http' | 'upgrade'
  /** Response status (101 is not parsed for upgrades: undefined). */
  status?: number
  /** `stripped`: the upstream sent Set-Cookie and the browser did not get it. */
  setCookie: 'none' | 'passed' | 'stripped' | 'untouched'
}

export interface StripProxyOptions {
  /**
   * Which requests keep their response's Set-Cookie.
   * @default isSocketPath: the Engine.IO path and session-socket's own HTTP route
   */
  keepCookies?: (req: http.IncomingMessage) => boolean
}

/**
 * An HTTP reverse proxy on 127.0.0.1 in front of a server, as a caching proxy that strips
 * `Set-Cookie`: the page, its assets and other HTTP lose every Set-Cookie; the socket's path
 * (`/socket.io/`, long-polling and the WebSocket upgrade, and session-socket's restore route)
 * passes untouched. The Host header is forwarded as the browser sent it, so same-origin checks
 * see the proxy's origin, as behind a real reverse proxy.
 */
export interface StripProxy {
  readonly port: number
  /** http://127.0.0.1:<port> */
  readonly url: string
  /** Every request so far, in arrival order. */
  exchanges(): ProxiedExchange[]
  /** Holds Engine.IO requests and upgrades (they wait, unanswered) until `releaseEngineIo()`. */
  holdEngineIo(): void
  releaseEngineIo(): void
  /** Closes the listener and every connection, held ones included. */
  close(): Promise<void>
}

/** The Engine.IO path of the default Socket.IO server: long-polling and the WebSocket upgrade. */
export const isEngineIo = (req: http.IncomingMessage) => (req.url ?? '').startsWith('/socket.io/')

/**
 * The socket's HTTP: the Engine.IO path, and `POST /session-socket/restore`, which the
 * register reply sends the browser to when the handshake could not set the cookie. An app on
 * `saveUninitialized: false` (the demo) stores a first visitor's session only at register,
 * after the handshake response has gone out, so its first cookie comes from that POST: a
 * proxy that stripped it too would leave plain HTTP without a session for good.
 */
export const isSocketPath = (req: http.IncomingMessage) => isEngineIo(req) || (req.url ?? '').startsWith('/session-socket/')

export async function startStripProxy(upstreamPort: number, options: StripProxyOptions = {}): Promise<StripProxy> {
  const keepCookies = options.keepCookies ?? isSocketPath
  const log: ProxiedExchange[] = []
  const sockets = new Set<net.Socket>()
  const agent = new http.Agent({ keepAlive: true })
  let held: Array<() => void> | undefined

  const whenReleased = (req: http.IncomingMessage, go: () => void) => {
    if (held && isEngineIo(req)) held.push(go)
    else go()
  }

  const server = http.createServer((req, res) => {
    const entry: ProxiedExchange = { method: req.method ?? 'GET', url: req.url ?? '/', kind: 'http', setCookie: 'none' }
    log.push(entry)
    whenReleased(req, () => {
      const upstream = http.request(
        { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent },
        (upstreamRes) => {
          const headers = { ...upstreamRes.headers }
          entry.status = upstreamRes.statusCode
          if (headers['set-cookie'] !== undefined) {
            if (keepCookies(req)) entry.setCookie = 'passed'
            else {
              entry.setCookie = 'stripped'
              delete headers['set-cookie']
            }
          }
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, headers)
          upstreamRes.pipe(res)
        },
      )
      upstream.on('error', () => {
        if (!res.headersSent) res.writeHead(502).end()
        else res.destroy()
      })
      // A browser that gives up (a cut long-poll) must not leave the upstream request open.
      res.on('close', () => {
        if (!res.writableFinished) upstream.destroy()
      })
      req.pipe(upstream)
    })
  })

  server.on('upgrade', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    log.push({ method: req.method ?? 'GET', url: req.url ?? '/', kind: 'upgrade', setCookie: 'untouched' })
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => client.destroy())
    if (!isEngineIo(req)) {
      client.destroy()
      return
    }
    whenReleased(req, () => {
      if (client.destroyed) return
      // The upgrade is not touched: its Set-Cookie (the 101's) reaches the browser.
      pipeUpgrade(req, client, head, upstreamPort, sockets)
    })
  })

  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    exchanges: () => log.map((entry) => ({ ...entry })),
    holdEngineIo() {
      held ??= []
    },
    releaseEngineIo() {
      const waiting = held ?? []
      held = undefined
      for (const go of waiting) go()
    },
    close() {
      held = undefined
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      server.closeAllConnections()
      agent.destroy()
      return closed
    },
  }
}
