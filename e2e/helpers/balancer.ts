import net from 'node:net'
import type { AddressInfo } from 'node:net'

/**
 * A TCP load balancer on 127.0.0.1 that is not sticky: each new connection goes to the next
 * upstream in turn (round robin), as an L4 balancer without session affinity does.
 */
export interface Balancer {
  port: number
  url: string
  /** Connections sent to each upstream so far, in the order the ports were given. */
  connections(): number[]
  /** Destroys every open connection (new ones are still accepted): every client reconnects. */
  cut(): void
  close(): Promise<void>
}

/**
 * Starts a round-robin balancer in front of `upstreamPorts`.
 *
 * @example
 * const balancer = await startBalancer([nodeA.port, nodeB.port])
 * await page.goto(balancer.url)
 */
export async function startBalancer(upstreamPorts: number[]): Promise<Balancer> {
  if (upstreamPorts.length === 0) throw new Error('startBalancer(ports): give at least one upstream port')
  const counts = upstreamPorts.map(() => 0)
  const pairs = new Set<[net.Socket, net.Socket]>()
  let next = 0

  const server = net.createServer((client) => {
    const index = next++ % upstreamPorts.length
    counts[index]!++
    const upstream = net.connect(upstreamPorts[index]!, '127.0.0.1')
    const pair: [net.Socket, net.Socket] = [client, upstream]
    pairs.add(pair)
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.pipe(upstream)
    upstream.pipe(client)
    for (const socket of pair) {
      socket.on('close', end)
      socket.on('error', end)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  const destroyAll = () => {
    for (const [client, upstream] of pairs) {
      client.destroy()
      upstream.destroy()
    }
    pairs.clear()
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections: () => [...counts],
    cut: destroyAll,
    close() {
      destroyAll()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
