import type http from 'node:http'
import net from 'node:net'

/**
 * Passes an HTTP upgrade (a WebSocket) through to 127.0.0.1:`upstreamPort` untouched: the
 * request head as it came, then raw bytes both ways. Each side's close closes the other; both
 * sockets join `sockets`, so a proxy's close() can destroy them.
 *
 * @example
 * server.on('upgrade', (req, client, head) => pipeUpgrade(req, client, head, appPort, sockets))
 */
export function pipeUpgrade(req: http.IncomingMessage, client: net.Socket, head: Buffer, upstreamPort: number, sockets: Set<net.Socket>): void {
  const upstream = net.connect({ port: upstreamPort, host: '127.0.0.1', noDelay: true })
  sockets.add(upstream)
  upstream.on('close', () => {
    sockets.delete(upstream)
    client.destroy()
  })
  client.on('close', () => upstream.destroy())
  upstream.on('error', () => upstream.destroy())
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`]
  for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`)
  upstream.write(`${lines.join('\r\n')}\r\n\r\n`)
  if (head.length > 0) upstream.write(head)
  client.setNoDelay(true)
  upstream.pipe(client)
  client.pipe(upstream)
}
