/**
 * Durable delivery figures, one process, built packages (`npm run build` first):
 *   - throughput of `ss.toTab(id, { durable: true }).emit()` vs a plain `ss.toTab(id).emit()`
 *     to one connected tab, until the tab has applied them all (memory and SQLite stores);
 *   - replay time of a 1,000-event gap: a tab cut from the network while 1,000 durable events
 *     are kept for it, from the network coming back to the last event applied.
 *
 *   npm run bench:durable              (3 repetitions, 2,000 events per throughput run)
 *   npm run bench:durable -- --reps=5 --events=5000
 */
import http from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import session from 'express-session'
import { Server } from 'socket.io'
import { createSessionSocketServer, MemoryLinkStore, type LinkStore } from '../packages/node/dist/index.js'
import { SqliteLinkStore } from '../packages/node/dist/stores/sqlite.js'
import { createSessionSocket, memoryTabIdStorage, memoryTokenStorage } from '../packages/browser/dist/index.js'
import { startTcpProxy } from '../e2e/helpers/tcp-proxy.js'

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback)
const REPS = arg('reps', 3)
const EVENTS = arg('events', 2000)
const GAP = 1000

async function startServer(links: LinkStore) {
  const app = express()
  const server = http.createServer(app)
  const io = new Server(server, { transports: ['websocket'] })
  const ss = createSessionSocketServer(io, {
    session: session({ secret: 'bench', resave: false, saveUninitialized: true }),
    store: links,
    rateLimits: false,
    durable: { maxEvents: Math.max(10_000, EVENTS + GAP) , maxBytes: 64 * 1024 * 1024 },
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    ss,
    port: (server.address() as AddressInfo).port,
    close: () => {
      ss.close()
      io.close()
      server.closeAllConnections()
    },
  }
}

function openTab(url: string) {
  const tab = createSessionSocket({ url, tokenStorage: memoryTokenStorage(), tabIdStorage: memoryTabIdStorage(), page: null, locks: null, backoff: () => 20, socketOptions: { transports: ['websocket'] } })
  let received = 0
  let wake: (() => void) | undefined
  tab.on('n', () => {
    received++
    wake?.()
  })
  const ready = () => new Promise<void>((resolve) => (tab.status === 'ready' ? resolve() : tab.on('ready', () => resolve())))
  const until = (count: number) => new Promise<void>((resolve) => {
    const check = () => (received >= count ? resolve() : (wake = check))
    check()
  })
  return { tab, ready, until, get received() { return received } }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const show = (xs: number[], unit: string, digits = 0) => `${median(xs).toFixed(digits)} ${unit} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`

async function throughput(store: 'memory' | 'sqlite') {
  const dir = mkdtempSync(join(tmpdir(), 'ss-bench-durable-'))
  const links = store === 'memory' ? new MemoryLinkStore() : new SqliteLinkStore({ path: join(dir, 'links.db') })
  const server = await startServer(links)
  const client = openTab(`http://127.0.0.1:${server.port}`)
  await client.ready()
  const plain: number[] = []
  const durable: number[] = []
  try {
    for (let rep = 0; rep < REPS + 1; rep++) {
      for (const kind of ['plain', 'durable'] as const) {
        const start = client.received
        const t0 = performance.now()
        for (let i = 0; i < EVENTS; i++) {
          if (kind === 'plain') server.ss.toTab(client.tab.tabId).emit('n', i)
          else await server.ss.toTab(client.tab.tabId, { durable: true }).emit('n', i)
        }
        await client.until(start + EVENTS)
        const rate = EVENTS / ((performance.now() - t0) / 1000)
        if (rep > 0) (kind === 'plain' ? plain : durable).push(rate) // rep 0 warms up
      }
    }
  } finally {
    client.tab.close()
    server.close()
    await links.close()
    rmSync(dir, { recursive: true, force: true })
  }
  const ratios = durable.map((d, i) => d / plain[i]!)
  console.log(`| durable vs plain emits, ${store} store, ${EVENTS} events to one tab | ${show(durable, 'ev/s')} | ${show(plain, 'ev/s')} | ${show(ratios, '', 3)} |`)
}

async function replay(store: 'memory' | 'sqlite') {
  const dir = mkdtempSync(join(tmpdir(), 'ss-bench-durable-'))
  const links = store === 'memory' ? new MemoryLinkStore() : new SqliteLinkStore({ path: join(dir, 'links.db') })
  const server = await startServer(links)
  const proxy = await startTcpProxy(server.port)
  const client = openTab(proxy.url)
  await client.ready()
  const fromRestore: number[] = []
  try {
    for (let rep = 0; rep < REPS; rep++) {
      proxy.cut()
      await new Promise<void>((resolve) => (client.tab.status === 'offline' ? resolve() : client.tab.on('status', (s) => s.status === 'offline' && resolve())))
      const start = client.received
      for (let i = 0; i < GAP; i++) await server.ss.toTab(client.tab.tabId, { durable: true }).emit('n', i)
      const t0 = performance.now()
      proxy.restore()
      await client.until(start + GAP)
      fromRestore.push(performance.now() - t0)
    }
  } finally {
    client.tab.close()
    await proxy.close()
    server.close()
    await links.close()
    rmSync(dir, { recursive: true, force: true })
  }
  // Includes the reconnect itself (backoff 20 ms, WebSocket + register): replayed events are
  // applied as they arrive, before the client's own 'ready' bookkeeping finishes.
  console.log(`| replay of a ${GAP}-event gap, ${store} store: network back → last event applied | ${show(fromRestore, 'ms')} | | |`)
}

console.log(`durable delivery, ${REPS} repetitions, Node ${process.version}`)
console.log('| figure | session-socket durable | plain emit | ratio (durable / plain) |')
console.log('| --- | --- | --- | --- |')
for (const store of ['memory', 'sqlite'] as const) await throughput(store)
for (const store of ['memory', 'sqlite'] as const) await replay(store)
process.exit(0)
