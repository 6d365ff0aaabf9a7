/**
 * A load process of the soak figure (bench/figures/soak.ts): SDK tabs (each its own cookie jar
 * and token storage) that make calls at a steady rate, drop their connection when told (and
 * come back with their token), and are replaced by a new tab when their session ends.
 * Every answer is counted per call id twice: as the SDK settles the call, and as acks arrive
 * on the wire, so an answer delivered twice cannot hide behind the SDK's promise.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { openSsTab, type Tab } from './lib/clients.js'
import { serveRequests } from './lib/processes.js'

/** Socket.IO's ACK packet type. */
const ACK = 3

interface SoakTab {
  tab: Tab
  /** Index in `live` (swap-removed when the tab ends). */
  slot: number
  /** When the harness expired its session (epoch ms). */
  expiredAt?: number
  /** When its connection was dropped; cleared when it is ready again. */
  droppedAt?: number
  ready: boolean
}

/** This process's event-loop delay: a busy load process would make calls look slow. */
const lag = monitorEventLoopDelay({ resolution: 20 })
lag.enable()
let url = ''
let prefix = ''
const live: SoakTab[] = []
/** Per call sequence number: settles seen through the SDK, and ok answers seen on the wire. */
const settles: number[] = []
const wireAnswers: number[] = []
const counts = {
  sent: 0,
  ok: 0,
  wrongAnswer: 0,
  /** SESSION_ENDED on a tab whose session the harness expired: the answer the user must get. */
  endedExpected: 0,
  errors: {} as Record<string, number>,
  reconnectsAsked: 0,
  reconnected: 0,
  reconnectMaxMs: 0,
  expiredAsked: 0,
  expiredEnded: 0,
  expiredEndMaxMs: 0,
  /** Tabs that ended without their session being expired, by reason. */
  unexpectedEnds: {} as Record<string, number>,
  replaced: 0,
}

function removeLive(t: SoakTab): void {
  const last = live.pop()!
  if (last !== t) {
    live[t.slot] = last
    last.slot = t.slot
  }
}

function watch(tab: Tab): SoakTab {
  const t: SoakTab = { tab, slot: live.length, ready: false }
  live.push(t)
  tab.socket.io.on('packet', (packet: { type: number; data?: unknown[] }) => {
    if (packet.type !== ACK) return
    const reply = packet.data?.[0] as { ok?: boolean; r?: { id?: unknown } } | undefined
    const id = reply?.ok ? reply.r?.id : undefined
    if (typeof id === 'string' && id.startsWith(prefix)) {
      const seq = Number(id.slice(prefix.length))
      wireAnswers[seq] = (wireAnswers[seq] ?? 0) + 1
    }
  })
  tab.ss!.on('ready', () => {
    t.ready = true
    if (t.droppedAt !== undefined) {
      counts.reconnected++
      counts.reconnectMaxMs = Math.max(counts.reconnectMaxMs, Date.now() - t.droppedAt)
      t.droppedAt = undefined
    }
  })
  tab.ss!.on('ended', (reason) => {
    t.ready = false
    removeLive(t)
    if (t.expiredAt !== undefined && reason === 'expired') {
      counts.expiredEnded++
      counts.expiredEndMaxMs = Math.max(counts.expiredEndMaxMs, Date.now() - t.expiredAt)
    } else {
      counts.unexpectedEnds[reason] = (counts.unexpectedEnds[reason] ?? 0) + 1
    }
    tab.close()
    // A new browser takes its place: the count of tabs stays the same.
    counts.replaced++
    watch(openSsTab(url, { backoff: 'sio' }))
  })
  return t
}

async function open(msg: { url: string; prefix: string; count: number; batch: number; timeoutMs: number }) {
  url = msg.url
  prefix = msg.prefix
  const started = Date.now()
  let failed = 0
  for (let done = 0; done < msg.count; done += msg.batch) {
    const batch: Tab[] = []
    for (let i = 0; i < Math.min(msg.batch, msg.count - done); i++) batch.push(openSsTab(url, { backoff: 'sio' }))
    for (const tab of batch) watch(tab)
    const results = await Promise.allSettled(batch.map((tab) => tab.nextSettle(msg.timeoutMs)))
    failed += results.filter((r) => r.status === 'rejected' || r.value !== 'ready').length
    if (Date.now() - started > msg.timeoutMs) throw new Error(`opening ${msg.count} tabs took over ${msg.timeoutMs} ms`)
  }
  return { opened: live.length, failed, ms: Date.now() - started }
}

/** A tab to act on: ready, and its session not expired by the harness. */
function pickReady(): SoakTab | undefined {
  for (let tries = 0; tries < 50 && live.length > 0; tries++) {
    const t = live[Math.floor(Math.random() * live.length)]!
    if (t.ready && t.expiredAt === undefined && t.droppedAt === undefined) return t
  }
  return undefined
}

let calling: NodeJS.Timeout | undefined
const inFlight = new Set<number>()

function call(): void {
  const t = live[Math.floor(Math.random() * live.length)]
  if (!t) return
  const seq = counts.sent++
  const id = `${prefix}${seq}`
  // Half the calls use the session (reload before), half do not.
  const method = seq % 2 === 0 ? 'echo.session' : 'echo'
  inFlight.add(seq)
  t.tab.call(method, { id }).then(
    (result) => {
      settles[seq] = (settles[seq] ?? 0) + 1
      inFlight.delete(seq)
      if ((result as { id?: unknown } | undefined)?.id === id) counts.ok++
      else counts.wrongAnswer++
    },
    (err: { code?: string }) => {
      settles[seq] = (settles[seq] ?? 0) + 1
      inFlight.delete(seq)
      const code = err.code ?? 'no code'
      if (code === 'SESSION_ENDED' && t.expiredAt !== undefined) counts.endedExpected++
      else counts.errors[code] = (counts.errors[code] ?? 0) + 1
    },
  )
}

/** `rate` calls per second, caught up on every tick so a busy moment does not lower the rate. */
function startCalls(msg: { rate: number }) {
  const started = performance.now()
  const base = counts.sent
  calling = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * msg.rate) - (counts.sent - base)
    for (let i = 0; i < Math.min(due, msg.rate); i++) call()
  }, 20)
  return { started: true }
}

/** Drops the connection of `count` ready tabs as a network loss would; they come back with their token. */
function reconnect(msg: { count: number }) {
  let dropped = 0
  for (let i = 0; i < msg.count; i++) {
    const t = pickReady()
    if (!t) continue
    t.droppedAt = Date.now()
    t.ready = false
    const engine = t.tab.socket.io.engine as unknown as { transport?: { ws?: { terminate?: () => void } }; close(): void }
    const ws = engine.transport?.ws
    if (ws?.terminate) ws.terminate()
    else engine.close()
    dropped++
  }
  counts.reconnectsAsked += dropped
  return { dropped }
}

/** A tab whose session the harness will expire in the store. */
function pickExpire() {
  const t = pickReady()
  if (!t) return { tabId: null }
  t.expiredAt = Date.now()
  counts.expiredAsked++
  return { tabId: t.tab.ss!.tabId }
}

function stats() {
  let ready = 0
  let expiring = 0
  const now = Date.now()
  let expiringOldestMs = 0
  for (const t of live) {
    if (t.ready) ready++
    if (t.expiredAt !== undefined) {
      expiring++
      expiringOldestMs = Math.max(expiringOldestMs, now - t.expiredAt)
    }
  }
  return { ...counts, inFlight: inFlight.size, tabs: live.length, ready, expiring, expiringOldestMs, loopLagP99MaxMs: lag.percentile(99) / 1e6 }
}

/** Stops the calls, waits for the ones in flight, and checks every call id. */
async function finish(msg: { timeoutMs: number }) {
  clearInterval(calling)
  const deadline = Date.now() + msg.timeoutMs
  while (inFlight.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  let missing = 0
  let settledTwice = 0
  let wireDuplicates = 0
  let okWithoutWire = 0
  for (let seq = 0; seq < counts.sent; seq++) {
    const s = settles[seq] ?? 0
    if (s === 0) missing++
    if (s > 1) settledTwice++
    const w = wireAnswers[seq] ?? 0
    if (w > 1) wireDuplicates++
  }
  // An ok answer the SDK gave must have come over the wire once.
  okWithoutWire = Math.max(0, counts.ok - wireAnswers.reduce((n, w) => n + (w > 0 ? 1 : 0), 0))
  return { ...stats(), missing, settledTwice, wireDuplicates, okWithoutWire }
}

serveRequests(
  async (msg) => {
    switch (msg.cmd) {
      case 'open':
        return open(msg as never)
      case 'calls':
        return startCalls(msg as never)
      case 'reconnect':
        return reconnect(msg as never)
      case 'pick-expire':
        return pickExpire()
      case 'not-expired': {
        // The server found no session for that tab (it was reconnecting): leave it be.
        const t = live.find((x) => x.tab.ss!.tabId === msg.tabId)
        if (t) t.expiredAt = undefined
        counts.expiredAsked--
        return {}
      }
      case 'stats':
        return stats()
      case 'finish':
        return finish(msg as never)
      default:
        throw new Error(`unknown command ${String(msg.cmd)}`)
    }
  },
  () => {
    clearInterval(calling)
    for (const t of live.splice(0)) t.tab.close()
  },
)
process.send?.({ type: 'up' })
