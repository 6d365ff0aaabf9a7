import net from 'node:net'
import { startTcpProxy, type TcpProxy } from '../../e2e/helpers/tcp-proxy.js'

type MutableNet = { createServer: typeof net.createServer; connect: typeof net.connect }

/**
 * e2e/helpers/tcp-proxy.ts with TCP_NODELAY on its sockets. The helper leaves Nagle's
 * algorithm on, so when the server sends two frames back to back (session-socket's CONNECT
 * reply, then `ss:registered`) the proxy's second delayed write waits for the client's delayed
 * ACK: +40 ms measured, on the SDK side only. A real path does not add that: routers forward
 * segments as they come, and both ends (ws, Chromium) set TCP_NODELAY. Until the helper sets it
 * itself (diff in BENCHMARKS.md), the sockets it makes get it here, with net.createServer and
 * net.connect wrapped only while the helper's own code calls them.
 */
export async function startNoDelayProxy(upstreamPort: number, options: { delayMs?: number } = {}): Promise<TcpProxy> {
  const mutable = net as unknown as MutableNet
  const createServer = mutable.createServer
  const connect = mutable.connect
  let proxyServer: net.Server | undefined
  mutable.createServer = ((...args: Parameters<typeof net.createServer>) => (proxyServer = createServer(...args))) as typeof net.createServer
  let proxy: TcpProxy
  try {
    proxy = await startTcpProxy(upstreamPort, options)
  } finally {
    mutable.createServer = createServer
  }
  const server = proxyServer!
  // Around the helper's 'connection' listener (synchronous): the upstream socket it opens
  // with net.connect, and the accepted client socket, both get TCP_NODELAY.
  server.prependListener('connection', () => {
    mutable.connect = ((...args: Parameters<typeof net.connect>) => connect(...args).setNoDelay(true)) as typeof net.connect
  })
  server.on('connection', (client: net.Socket) => {
    mutable.connect = connect
    client.setNoDelay(true)
  })
  return proxy
}
