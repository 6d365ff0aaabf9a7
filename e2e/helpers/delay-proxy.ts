import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { pipeUpgrade } from './pipe-upgrade.js'

export interface DelayProxyOptions {
  /** How long each HTTP response waits at the proxy before it goes to the browser (ms). @default uniform 0–250 */
  delayMs?: (req: http.IncomingMessage) => number
}

/** One HTTP response the proxy held back. */
export interface DelayedExchange {
  method: string
  url: string
  delayMs: number
  /** The Set-Cookie names the response carried. */
  setCookie: string[]
}

export interface DelayProxy {
  readonly port: number
  /** http://127.0.0.1:<port> */
  readonly url: string
  /** Every HTTP response so far, in the order the upstream answered. */
  exchanges(): DelayedExchange[]
  close(): Promise<void>
}

/**
 * An HTTP reverse proxy on 127.0.0.1 that delays every HTTP response (the page, a form post's
 * redirect, long-polling, the restore route) as a real network does, while WebSocket upgrades
 * and their frames pass at once: the browser stores a login response's cookie some time after
 * the server sent it, and the server's WebSocket frames (ss:rejoin) reach the tabs before that.
 * The Host header is forwarded as the browser sent it, so same-origin checks see the proxy's origin.
 *
 * @example
 * const proxy = await startDelayProxy(demo.port)
 * await page.goto(proxy.url)
 */
export async function startDelayProxy(upstreamPort: number, options: DelayProxyOptions = {}): Promise<DelayProxy> {
  const delayMs = options.delayMs ?? (() => Math.random() * 250)
  const log: DelayedExchange[] = []
  const sockets = new Set<net.Socket>()
  const timers = new Set<NodeJS.Timeout>()
  const agent = new http.Agent({ keepAlive: true })

  const server = http.createServer((req, res) => {
    const upstream = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers, agent }, (upstreamRes) => {
      const wait = delayMs(req)
      const setCookie = upstreamRes.headers['set-cookie'] ?? []
      log.push({ method: req.method ?? 'GET', url: req.url ?? '/', delayMs: wait, setCookie: setCookie.map((line) => line.slice(0, line.indexOf('='))) })
      // The whole response is held, head and body: the browser sees nothing of it before.
      upstreamRes.pause()
      const timer = setTimeout(() => {
        timers.delete(timer)
        if (res.destroyed) return upstreamRes.destroy()
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, upstreamRes.headers)
        upstreamRes.pipe(res)
        upstreamRes.resume()
      }, wait)
      timers.add(timer)
    })
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end()
      else res.destroy()
    })
    // A browser that gives up (a page navigating away, a cut long-poll) must not leave the upstream request open.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy()
    })
    req.pipe(upstream)
  })

  server.on('upgrade', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    sockets.add(client)
    client.on('close', () => sockets.delete(client))
    client.on('error', () => client.destroy())
    // Undelayed: the WebSocket's bytes pass as they come.
    pipeUpgrade(req, client, head, upstreamPort, sockets)
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
    close() {
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.destroy()
      server.closeAllConnections()
      agent.destroy()
      return closed
    },
  }
}
