import type { Page, Request, Response, WebSocket } from '@playwright/test'

/*
 * What a page's Socket.IO connection said, read from the browser's own traffic: WebSocket
 * frames and long-polling bodies both (a call made right after a reconnect may travel on
 * either, before or after the upgrade). Enough Engine.IO v4 / Socket.IO v5 parsing for the
 * main namespace: open packets, events and acks; binary packets are skipped.
 */

/** One `ss:call` of the page, by call id. */
export interface CallRecord {
  id: string
  method: string
  params: unknown
  /** How many times the page put it on the wire (a resend after a lost connection keeps the id). */
  sends: number
  /** Every answer that came back for it (the server answers a resent id once more, from memory). */
  replies: Array<{ ok: boolean; r?: unknown; e?: { code: string; message: string } }>
}

/** The `ss:registered` reply, as far as these specs read it. */
export interface RegisteredReply {
  token: string
  tabId: string
  restored: boolean
  reason: string | null
  newSession: boolean
}

export interface SocketTraffic {
  /** Calls in the order the page first sent them. */
  calls(method?: string): CallRecord[]
  /** `ss:registered` replies in the order they arrived (a reply read from a long-poll body may lag the page a little: poll). */
  registered(): RegisteredReply[]
  /** The register requests the page sent (CONNECT `auth`), in order: the token each connection presented. */
  connects(): Array<{ token: string | null; tabId: string }>
  /** Engine.IO sessions the server opened for this page (open packets received): one per handshake answered. */
  opens(): number
  /** Requests and WebSockets the page started towards /socket.io/ (answered or not). */
  attempts(): number
  /** Of those, the Engine.IO long-polling requests (`transport=polling`). */
  polls(): number
  /** Application events (not `ss:`) received, by name. */
  events(name: string): unknown[][]
}

const RS = '\x1e'

/** True for the URL of a Socket.IO request or WebSocket. */
export function isSocketIo(url: string): boolean {
  return new URL(url).pathname.startsWith('/socket.io/')
}

/**
 * Starts recording the Socket.IO traffic of `page` (its reloads included). Call it before
 * `page.goto`.
 *
 * @example
 * const traffic = recordSocketTraffic(page)
 * await page.goto(url)
 * expect(traffic.calls('counter.increment').map((c) => c.sends)).toEqual([1, 1])
 */
export function recordSocketTraffic(page: Page): SocketTraffic {
  const calls = new Map<string, CallRecord>()
  /** Ack id → call id, per connection of the page's Socket.IO client (ids keep counting across reconnects). */
  const acks = new Map<number, string>()
  const registered: RegisteredReply[] = []
  const connects: Array<{ token: string | null; tabId: string }> = []
  const events = new Map<string, unknown[][]>()
  let opens = 0
  let attempts = 0
  let polls = 0

  const onSocketIoPacket = (direction: 'out' | 'in', packet: string) => {
    const type = packet[0]
    let rest = packet.slice(1)
    if (type === '5' || type === '6') return // binary: not used by session-socket
    if (rest.startsWith('/')) rest = rest.slice(rest.indexOf(',') + 1) // another namespace: not ours
    const digits = /^\d+/.exec(rest)?.[0] ?? ''
    const ackId = digits === '' ? undefined : Number(digits)
    let data: unknown
    try {
      data = rest.length > digits.length ? JSON.parse(rest.slice(digits.length)) : undefined
    } catch {
      return
    }
    if (type === '0' && direction === 'out' && data && typeof data === 'object') {
      const auth = data as { token?: string | null; tabId?: string }
      if (typeof auth.tabId === 'string') connects.push({ token: auth.token ?? null, tabId: auth.tabId })
    } else if (type === '2' && Array.isArray(data) && typeof data[0] === 'string') {
      const [name, payload] = data as [string, any]
      if (direction === 'out' && name === 'ss:call' && payload && typeof payload.id === 'string') {
        let record = calls.get(payload.id)
        if (!record) calls.set(payload.id, (record = { id: payload.id, method: payload.m, params: payload.p, sends: 0, replies: [] }))
        record.sends++
        if (ackId !== undefined) acks.set(ackId, payload.id)
      } else if (direction === 'in' && name === 'ss:registered') {
        registered.push(payload as RegisteredReply)
      } else if (direction === 'in' && !name.startsWith('ss:')) {
        const list = events.get(name) ?? []
        list.push(data.slice(1))
        events.set(name, list)
      }
    } else if (type === '3' && direction === 'in' && ackId !== undefined && Array.isArray(data)) {
      const id = acks.get(ackId)
      const record = id === undefined ? undefined : calls.get(id)
      if (record) record.replies.push(data[0] as CallRecord['replies'][number])
    }
  }

  const onEnginePacket = (direction: 'out' | 'in', packet: string) => {
    if (packet[0] === '0' && direction === 'in') opens++
    else if (packet[0] === '4') onSocketIoPacket(direction, packet.slice(1))
  }
  const onPayload = (direction: 'out' | 'in', payload: string | Buffer | null | undefined) => {
    if (typeof payload !== 'string') return
    for (const packet of payload.split(RS)) onEnginePacket(direction, packet)
  }

  // A new document has a new Socket.IO client, whose ack ids start again at 0.
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) acks.clear()
  })
  page.on('websocket', (ws: WebSocket) => {
    if (!isSocketIo(ws.url())) return
    attempts++
    ws.on('framesent', ({ payload }) => onPayload('out', payload))
    ws.on('framereceived', ({ payload }) => onPayload('in', payload))
  })
  page.on('request', (request: Request) => {
    if (!isSocketIo(request.url())) return
    attempts++
    if (new URL(request.url()).searchParams.get('transport') === 'polling') polls++
    if (request.method() === 'POST') onPayload('out', request.postData())
  })
  page.on('response', (response: Response) => {
    if (!isSocketIo(response.url()) || response.request().method() !== 'GET') return
    // The body of a finished long-poll; a page that navigates away may take it with it.
    response.text().then(
      (body) => onPayload('in', body),
      () => undefined,
    )
  })

  return {
    calls: (method) => [...calls.values()].filter((call) => method === undefined || call.method === method),
    registered: () => [...registered],
    connects: () => [...connects],
    opens: () => opens,
    attempts: () => attempts,
    polls: () => polls,
    events: (name) => [...(events.get(name) ?? [])],
  }
}
