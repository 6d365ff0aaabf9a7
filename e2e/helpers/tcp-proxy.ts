import net from 'node:net'
import type { AddressInfo } from 'node:net'

/**
 * A TCP proxy on 127.0.0.1 between clients and a server, for network trouble on purpose:
 * latency on every chunk, a cut (every connection destroyed, new ones refused), a silent
 * drop (connections stay open, no byte passes), and a count of round trips.
 */
export interface TcpProxy {
  port: number
  url: string
  /** Destroys every connection and refuses new ones until `restore()`. */
  cut(): void
  /** Keeps connections open but lets no byte through until `restore()`: only heartbeats notice. */
  drop(): void
  restore(): void
  /** Points new connections at another upstream port. */
  retarget(port: number): void
  /**
   * Client→server flights since the last reset: each time the client sends after the server
   * spoke (or first), one more round trip has started.
   */
  flights(): number
  resetFlights(): void
  close(): Promise<void>
}

export async function startTcpProxy(upstreamPort: number, options: { delayMs?: number } = {}): Promise<TcpProxy> {
  const delay = options.delayMs ?? 0
  let target = upstreamPort
  let state: 'open' | 'cut' | 'dropped' = 'open'
  let flights = 0
  let lastDirection: 'up' | 'down' | undefined
  const pairs = new Set<[net.Socket, net.Socket]>()

  const forward = (from: net.Socket, to: net.Socket, direction: 'up' | 'down') => {
    from.on('data', (chunk: Buffer) => {
      if (state !== 'open') return
      if (direction === 'up' && lastDirection !== 'up') flights++
      lastDirection = direction
      if (delay === 0) to.write(chunk)
      else setTimeout(() => to.writable && to.write(chunk), delay)
    })
  }

  // TCP_NODELAY on both legs, as a real path behaves: with Nagle on, a second small frame sent
  // right behind a first (the CONNECT reply, then ss:registered) waits for the peer's delayed ACK
  // (BENCHMARKS.md, round trips).
  const server = net.createServer({ noDelay: true }, (client) => {
    if (state === 'cut') {
      client.destroy()
      return
    }
    const upstream = net.connect({ port: target, host: '127.0.0.1', noDelay: true })
    const pair: [net.Socket, net.Socket] = [client, upstream]
    pairs.add(pair)
    const end = () => {
      pairs.delete(pair)
      // Let delayed chunks drain before closing, as a slow link would.
      setTimeout(() => {
        client.destroy()
        upstream.destroy()
      }, delay)
    }
    forward(client, upstream, 'up')
    forward(upstream, client, 'down')
    client.on('close', end)
    upstream.on('close', end)
    client.on('error', end)
    upstream.on('error', end)
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
    cut() {
      state = 'cut'
      destroyAll()
    },
    drop() {
      state = 'dropped'
    },
    restore() {
      state = 'open'
    },
    retarget(next) {
      target = next
    },
    flights: () => flights,
    resetFlights() {
      flights = 0
      lastDirection = undefined
    },
    close() {
      destroyAll()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
