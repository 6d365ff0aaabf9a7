/**
 * A load process: many simulated browser tabs (each its own cookie jar and token storage) of
 * one side, driven over IPC by the harness. Commands: open, arm, wait, close (see below).
 */
import { openTab, type BackoffMode, type Side, type Tab } from './lib/clients.js'
import { serveRequests } from './lib/processes.js'

const tabs: Tab[] = []

/** Opens `count` tabs, `batch` at a time, each batch waiting until its tabs are ready. */
async function open(msg: { side: Side; url: string; count: number; batch: number; backoff: BackoffMode; timeoutMs: number }) {
  const started = Date.now()
  let failed = 0
  for (let done = 0; done < msg.count; done += msg.batch) {
    const batch: Tab[] = []
    for (let i = 0; i < Math.min(msg.batch, msg.count - done); i++) batch.push(openTab(msg.side, msg.url, { backoff: msg.backoff }))
    tabs.push(...batch)
    const results = await Promise.allSettled(batch.map((tab) => (tab.settled === 'ready' ? 'ready' : tab.nextSettle(msg.timeoutMs))))
    failed += results.filter((r) => r.status === 'rejected' || r.value !== 'ready').length
    if (Date.now() - started > msg.timeoutMs) throw new Error(`opening ${msg.count} tabs took over ${msg.timeoutMs} ms`)
  }
  return { opened: tabs.length, failed, ms: Date.now() - started }
}

/** Resolves when every tab settled (ready or ended) after the last arm, or at the deadline. */
async function wait(msg: { timeoutMs: number }) {
  const deadline = Date.now() + msg.timeoutMs
  while (Date.now() < deadline) {
    if (tabs.every((tab) => tab.settled !== undefined)) break
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const at: number[] = []
  let ready = 0
  let ended = 0
  let none = 0
  let maxAttempts = 0
  for (const tab of tabs) {
    at.push(tab.readyAt ?? -1)
    if (tab.settled === 'ready') ready++
    else if (tab.settled === 'ended') ended++
    else none++
    maxAttempts = Math.max(maxAttempts, tab.attempts)
  }
  return { at, ready, ended, none, maxAttempts }
}

serveRequests(
  async (msg) => {
    switch (msg.cmd) {
      case 'open':
        return open(msg as never)
      case 'arm':
        for (const tab of tabs) tab.arm()
        return { armed: tabs.length }
      case 'wait':
        return wait(msg as never)
      case 'close':
        for (const tab of tabs.splice(0)) tab.close()
        return { closed: true }
      default:
        throw new Error(`unknown command ${String(msg.cmd)}`)
    }
  },
  () => {
    for (const tab of tabs.splice(0)) tab.close()
  },
)
process.send?.({ type: 'up' })
