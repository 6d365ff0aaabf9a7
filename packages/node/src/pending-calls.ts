import type { Socket } from 'socket.io'
import { EVENTS, SessionSocketError, type CallReply, type EndedEvent } from '@session-socket/protocol'

type Answer = (reply: CallReply) => void

/** The answers still owed to each socket's calls. */
const owed = new WeakMap<Socket, Set<Answer>>()

/** Answers every call the socket still waits for with SESSION_ENDED. */
function endCalls(answers: Set<Answer>, event: EndedEvent | undefined): void {
  const reason = event?.reason ? ` (${event.reason})` : ''
  const reply: CallReply = { ok: false, e: new SessionSocketError('SESSION_ENDED', `the session has ended${reason}`).toWire() }
  for (const answer of [...answers]) answer(reply)
}

/**
 * Wraps a call's ack so that the end of its session answers it. When `ss:ended` goes out to the
 * socket (from this node or another, through the adapter), every call of the socket still
 * running or queued behind its session's calls is answered SESSION_ENDED first: the disconnect
 * right after would otherwise leave the client waiting for answers that never come. A call
 * answered that way keeps running; its own answer is dropped (an ack is sent once).
 *
 * @example
 * const reply = holdCall(socket, ack)
 * rpc.dispatch(socket, raw, state).then(reply)
 */
export function holdCall(socket: Socket, ack: Answer): Answer {
  let answers = owed.get(socket)
  if (!answers) {
    const set = (answers = new Set())
    owed.set(socket, set)
    // Called before the packet is written, for an emit to the socket and for a broadcast
    // reaching it from any node: the answers go out just ahead of `ss:ended`.
    socket.onAnyOutgoing((event: unknown, payload: unknown) => {
      if (event === EVENTS.ENDED && set.size > 0) endCalls(set, payload as EndedEvent | undefined)
    })
  }
  const set = answers
  let answered = false
  const answer: Answer = (reply) => {
    if (answered) return
    answered = true
    set.delete(answer)
    ack(reply)
  }
  set.add(answer)
  return answer
}
