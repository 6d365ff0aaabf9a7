import { disposeDemos, startDemo, type DemoProcess } from '../helpers/demo-process.js'
import { LOG_REGISTERS, serverRegisters } from '../helpers/recorded-tab.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { click, httpSession, openDemoTab, recordStatuses, statusTrail, tabIdOf, textOf, waitText, whoami } from '../engines/demo-tab.js'
import { expect, test } from '../engines/engine-test.js'

// Network loss: the page is loaded through a TCP proxy, so its socket goes through it too; the
// proxy cuts (every connection destroyed, new ones refused) and restores. However the engine
// closes its WebSocket on that, calls made meanwhile wait in the client and run once each
// after the tab is back in its session.

let demo: DemoProcess | undefined
let proxy: TcpProxy | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  await proxy?.close()
  proxy = undefined
  demo = undefined
  await disposeDemos()
})

test('should queue calls made while the network is cut and run each once after every reconnect', async ({ profile }) => {
  test.setTimeout(90_000)
  demo = await startDemo({ env: LOG_REGISTERS })
  proxy = await startTcpProxy(demo.port)
  const page = await openDemoTab(profile, proxy.url)
  const before = await whoami(page)
  expect(before.tabId).toBe(await tabIdOf(page))
  expect((await httpSession(page)).sessionId).toBe(before.sessionId)
  await recordStatuses(page)
  const registersBefore = serverRegisters(demo)
  const ROUNDS = 3
  const CLICKS = 3

  for (let round = 1; round <= ROUNDS; round++) {
    proxy.cut()
    await waitText(page, 'status', 'offline')
    for (let i = 0; i < CLICKS; i++) await click(page, 'counter-rpc')
    // Nothing can reach the server: the calls wait in the page.
    expect(await textOf(page, 'counter')).toBe(String((round - 1) * CLICKS))

    proxy.restore()
    await waitText(page, 'status', 'ready')
    await waitText(page, 'counter', String(round * CLICKS))
    await waitText(page, 'last-event', 'reconnected after network loss')
    // The server holds the socket in the same session, as the same tab.
    expect(await whoami(page)).toEqual(before)
  }

  // One register per reconnect, none lost and none doubled; the tab never gave up its session.
  expect(serverRegisters(demo) - registersBefore).toBe(ROUNDS)
  const trail = await statusTrail(page)
  expect(trail).not.toContain('ended')
  expect(trail).not.toContain('closed')
  expect(trail.filter((status) => status === 'ready')).toHaveLength(ROUNDS)
  // The calls ran once each: the session counted every click exactly once.
  expect(await httpSession(page)).toMatchObject({ sessionId: before.sessionId, count: ROUNDS * CLICKS })
  await click(page, 'counter-http')
  await waitText(page, 'counter', String(ROUNDS * CLICKS + 1))
  expect(await httpSession(page)).toMatchObject({ sessionId: before.sessionId, count: ROUNDS * CLICKS + 1 })
})
