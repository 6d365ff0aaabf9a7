import type { Socket } from 'socket.io'

/** The part of Socket.IO's per-connection `Client` that every packet to the browser goes through. */
interface EngineWriter {
  writeToEngine(packets: unknown, options: unknown): void
}

/** Packets held back on one connection while one or more of its sockets finish registering. */
interface Hold {
  holders: number
  packets: Array<[unknown, unknown]>
  /** Set while a socket's first packet goes out: it passes the hold. */
  passing: boolean
}

const holds = new WeakMap<EngineWriter, Hold>()

/**
 * Holds back every packet to the socket's connection (its own emits, room broadcasts from any
 * node, app emits from `tab:open` or `connection` listeners) until the returned function sends
 * the socket's first packet; the held ones follow, in order. Register joins the socket's rooms
 * before it reads the durable stream, so a broadcast could otherwise beat `ss:registered`.
 * Socket.IO writes both emits and adapter broadcasts through the connection's
 * `client.writeToEngine`; the hold wraps it on that one client only. Several sockets of one
 * connection (namespaces) share one hold, flushed when the last of them is through.
 *
 * @example
 * const sendFirst = holdPackets(socket)
 * await registerSocket.enter(socket, reply)
 * sendFirst(() => socket.emit('ss:registered', reply))
 */
export function holdPackets(socket: Socket): (first: () => void) => void {
  const client = socket.client as unknown as EngineWriter
  let hold = holds.get(client)
  if (!hold) {
    const created: Hold = { holders: 0, packets: [], passing: false }
    const write = client.writeToEngine
    client.writeToEngine = function writeToEngine(this: EngineWriter, packets, options) {
      if (created.holders === 0 || created.passing) return write.call(this, packets, options)
      created.packets.push([packets, options])
    }
    holds.set(client, (hold = created))
  }
  const current = hold
  current.holders++
  let released = false
  // A socket that goes before registering must not keep the connection's packets forever.
  const onDisconnect = () => release(() => {})
  const release = (first: () => void) => {
    if (released) return
    released = true
    socket.off('disconnect', onDisconnect)
    current.passing = true
    try {
      first()
    } finally {
      current.passing = false
      current.holders--
    }
    if (current.holders > 0) return
    for (const [packets, options] of current.packets.splice(0)) client.writeToEngine(packets, options)
  }
  socket.once('disconnect', onDisconnect)
  return release
}
