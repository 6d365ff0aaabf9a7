import type { IncomingMessage } from 'node:http'
import createDebug from 'debug'
import { SessionSocketError, type EndReason, type RegisterReply, type RegisterRequest } from '@session-socket/protocol'
import type { DurableEvents, StreamPosition } from './durable.js'
import { handshakeSession } from './handshake.js'
import type { LinkStore } from './link-store.js'
import type { RateLimiter } from './rate-limiter.js'
import { linkRequestSession } from './request-session.js'
import { resolveRegistration, type RotationOptions, type TokenLifetimes } from './register.js'
import { sessionRoom, tabRoom, userRoom, type SessionNamespace, type SessionSocket } from './rooms.js'
import type { SessionBridge } from './session-bridge.js'
import { noteSessionExpiry } from './session-expiry.js'
import type { SocketData } from './socket-data.js'
import type { TabEvents } from './tab-events.js'
import { recordRateLimited, recordTokenReuse } from './telemetry.js'
import { placeTab } from './tabs.js'
import type { UserOf } from './users.js'

const debug = createDebug('session-socket:register-socket')
/** Security-relevant events (bad token, rate limit, token reuse); never a token, cookie or tab id. */
const security = createDebug('session-socket:security')

/** Applies register's decision (`resolveRegistration`) to a socket, in two steps. */
export interface RegisterSocket {
  /**
   * Decides the socket's session, within the rate limits, places its tab and fills
   * `socket.data`. Resolves with the reply for the client (its `seq` is set by `enter`).
   */
  register(socket: SessionSocket, request: RegisterRequest): Promise<RegisterReply>
  /**
   * Joins the socket's rooms, then reads its durable stream: events kept before the read are
   * replayed, events kept after it arrive live (the client drops duplicates by seq).
   */
  enter(socket: SessionSocket, reply: RegisterReply): Promise<StreamPosition>
}

/**
 * Register for one server: rate limits around the decision, tab placement, rooms, and the
 * `tab:open` / `tab:close` events.
 *
 * @example
 * const reply = await registerSocket.register(socket, parseRegister(socket.handshake.auth))
 * const position = await registerSocket.enter(socket, reply)
 * socket.emit('ss:registered', reply)
 */
export function createRegisterSocket(deps: {
  nsp: SessionNamespace
  links: LinkStore
  sessions: SessionBridge
  durable: DurableEvents
  tabEvents: TabEvents
  lifetimes: TokenLifetimes
  rotation: RotationOptions | undefined
  identify: UserOf | undefined
  now: () => number
  clientIp: (req: IncomingMessage) => string
  newSessionsPerIp: RateLimiter | undefined
  registersPerSession: RateLimiter | undefined
  /** How long the store keeps a session a handshake made while it stays empty (ms). */
  emptySessionTtl: number
  endSession: (sessionId: string, reason: EndReason) => Promise<void>
}): RegisterSocket {
  const { nsp, links, sessions, durable, tabEvents, lifetimes, rotation, identify, now, clientIp, newSessionsPerIp, registersPerSession, emptySessionTtl, endSession } = deps

  /** Reuse of a rotated token: every token revoked, every tab ended, the session destroyed (its cookies too). */
  async function endStolenSession(sessionId: string): Promise<void> {
    security('rotated token reused after its successor was used: ending its session')
    recordTokenReuse()
    await endSession(sessionId, 'revoked')
    await sessions.destroy(sessionId)
  }
  /** The durable seq each registering socket said it had applied. */
  const appliedSeq = new WeakMap<SessionSocket, number | undefined>()

  function attach(socket: SessionSocket, restored: boolean): void {
    const data = socket.data
    const rooms = [sessionRoom(data.sessionId), tabRoom(data.tabId)]
    if (data.userId !== undefined) rooms.push(userRoom(data.userId))
    void socket.join(rooms)
    socket.once('disconnect', (reason) => {
      durable.seen(data.sessionId, data.tabId).catch((err) => debug('recording the tab failed: %s', (err as Error).message))
      tabEvents.tell('tab:close', { sessionId: data.sessionId, tabId: data.tabId, socketId: socket.id, reason })
    })
    tabEvents.tell('tab:open', { sessionId: data.sessionId, tabId: data.tabId, socketId: socket.id, restored })
  }

  return {
    async register(socket, request) {
      const ip = clientIp(socket.request)
      const handshake = handshakeSession(socket.request)
      const registration = await resolveRegistration({
        request,
        handshake,
        links,
        sessions,
        lifetimes,
        rotation,
        identify,
        // Only what costs the server something new is counted per address: other clients'
        // unusable tokens never refuse this one (many users share an address behind a NAT).
        admitNewSession: () => {
          const wait = newSessionsPerIp?.hit(ip) ?? 0
          if (wait === 0) return
          security('register refused: too many new sessions from one address')
          recordRateLimited('newSessionsPerIp')
          throw new SessionSocketError('RATE_LIMITED', 'too many new sessions from this address; try again later', { retryAfter: wait })
        },
        endStolenSession,
        emptySessionTtl,
        now: now(),
      })
      // Answered like a first visit (a fresh token), never refused: 192 random bits cannot be guessed.
      if (registration.failed) security('register with an unusable token (%s)', registration.reply.reason)
      const tooMany = registersPerSession?.hit(registration.sessionId) ?? 0
      if (tooMany > 0) {
        security('register refused: too many registers for one session')
        recordRateLimited('registersPerSession')
        throw new SessionSocketError('RATE_LIMITED', 'too many reconnects for this session; try again later', { retryAfter: tooMany })
      }
      registration.reply.tabId = await placeTab(nsp, registration.sessionId, request.tabId, {
        streams: links,
        now: now(),
        previousSessionId: registration.linkedTo,
      })
      // socket.request.session in the app's own handlers names the linked session, never another.
      if (registration.sessionId !== handshake?.sessionId) linkRequestSession(socket.request, registration.sessionId, registration.session)
      const data: SocketData = {
        sessionId: registration.sessionId,
        tabId: registration.reply.tabId,
        since: now(),
        tokenHash: registration.tokenHash,
      }
      // Known before the first event goes out, so a fresh tab is in its user room from the start.
      if (registration.userId !== undefined) data.userId = registration.userId
      // Merged, never replaced: socket.data may already hold what the app's own io.use() put
      // there. The keys of SocketData are session-socket's, userId included when it names none.
      if (registration.userId === undefined) delete (socket.data as Partial<SocketData>).userId
      Object.assign(socket.data, data)
      noteSessionExpiry(socket, registration.session)
      appliedSeq.set(socket, request.seq)
      return registration.reply
    },
    async enter(socket, reply) {
      attach(socket, reply.restored)
      const data = socket.data
      const position = await durable.enter(data.sessionId, data.tabId, appliedSeq.get(socket))
      reply.seq = position.seq
      if (position.gap) reply.gap = true
      return position
    },
  }
}
