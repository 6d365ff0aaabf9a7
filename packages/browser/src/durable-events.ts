import type { Socket } from 'socket.io-client'
import { EVENTS, STREAM_BLOCK, type DurableEventPayload, type RegisterReply } from '@session-socket/protocol'

/** Most durable events held back while waiting for the one before them. */
const MAX_EARLY_EVENTS = 10_000
/** Applied events are acknowledged this much later (ms), so a burst costs one ack. */
const ACK_DELAY = 20

/** Where a tab stands in its session's durable event stream. */
export interface DurableEvents {
  /** Last durable event applied; undefined until the first register reply (a fresh page). */
  readonly seq: number | undefined
  /** Cancels a pending ack (the client stopped). */
  stop(): void
}

/**
 * Applies the durable events that arrive on `socket` once each, in seq order, and acknowledges
 * them in batches. Each register reply says where the tab stands: events that come before it,
 * or before their predecessor, wait (up to 10,000). `emit(event, ...args)` receives each
 * applied event, and `gap` gets `{ from, to }` when events were lost on the way (the server
 * said so, or its stream started anew).
 *
 * @example
 * const durable = createDurableEvents(socket, (event, ...args) => listeners.emitApp(event, ...args), (gap) => listeners.emit('gap', gap))
 * socket.auth = (cb) => cb({ seq: durable.seq })
 */
export function createDurableEvents(
  socket: Socket,
  emit: (event: string, ...args: unknown[]) => void,
  gap: (info: { from: number; to: number }) => void,
): DurableEvents {
  let seq: number | undefined
  /** Events that arrived before their position was known or before their predecessor. */
  const early = new Map<number, DurableEventPayload>()
  /** Between a new connection and its register reply, events wait. */
  let positioned = false
  let ackTimer: ReturnType<typeof setTimeout> | undefined

  const drain = () => {
    if (!positioned || seq === undefined) return
    // A stream the server started anew numbers from a later million block (streamBase): move
    // to it, and say a gap unless this tab never had events.
    let newest = -1
    for (const key of early.keys()) newest = Math.max(newest, Math.floor(key / STREAM_BLOCK))
    if (newest > Math.floor(seq / STREAM_BLOCK)) {
      const from = seq
      seq = newest * STREAM_BLOCK
      if (from !== 0) gap({ from, to: seq })
    }
    for (const key of early.keys()) if (key <= seq) early.delete(key)
    let applied = false
    for (let next = early.get(seq + 1); next; next = early.get(seq + 1)) {
      early.delete(next.seq)
      seq = next.seq
      applied = true
      emit(next.e, ...next.a)
    }
    if (applied && ackTimer === undefined) {
      ackTimer = setTimeout(() => {
        ackTimer = undefined
        if (socket.connected && seq !== undefined) socket.emit(EVENTS.ACK, { seq })
      }, ACK_DELAY)
    }
  }

  socket.on('connect', () => {
    positioned = false
  })
  // Positioned at once: durable events behind this packet are judged against it.
  socket.on(EVENTS.REGISTERED, (reply: RegisterReply) => {
    if (typeof reply.seq !== 'number') return
    const from = seq ?? reply.seq
    seq = reply.seq
    positioned = true
    if (reply.gap) gap({ from, to: reply.seq })
    drain()
  })
  socket.on(EVENTS.EVENT, (payload: DurableEventPayload) => {
    if (typeof payload?.seq !== 'number' || typeof payload.e !== 'string' || !Array.isArray(payload.a)) return
    if (positioned && seq !== undefined && payload.seq <= seq) return
    // The next one is always taken, even with the buffer full: it is what the others wait for.
    if (early.size < MAX_EARLY_EVENTS || payload.seq === seq! + 1) early.set(payload.seq, payload)
    drain()
  })

  return {
    get seq() {
      return seq
    },
    stop() {
      clearTimeout(ackTimer)
      // A client connected again after close() acknowledges again.
      ackTimer = undefined
    },
  }
}
