import { PAGES, startBundleServer, type BundleServer } from '../helpers/bundle-server.js'
import { disposeDemos, startDemo, type DemoProcess } from '../helpers/demo-process.js'
import { openDemoTab, recordStatuses, statusTrail, tabIdOf, waitListedTabs, waitText, whoami } from '../engines/demo-tab.js'
import { openDuplicate, type EngineContext, type EnginePage } from '../engines/driver.js'
import { expect, test } from '../engines/engine-test.js'

// Tabs of one browser profile share the link token (IndexedDB) and the session, each with its
// own tab id (sessionStorage); a reload keeps a tab's id; a duplicated tab, which starts with a
// copy of the original's sessionStorage, gets a new one. Web Locks tell a copy from a reload;
// where they are missing, a claim over BroadcastChannel does.

let server: BundleServer | undefined
let demo: DemoProcess | undefined

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus && demo) await testInfo.attach('demo-output', { body: demo.output(), contentType: 'text/plain' })
  await server?.close()
  server = demo = undefined
  await disposeDemos()
})

interface BundleWindow {
  client: { status: string; tabId: string; call(method: string): Promise<{ sessionId: string; tabId: string }> }
  tokens: { get(): Promise<string | null> }
}

const waitReady = (page: EnginePage) => page.waitFor(() => (window as unknown as Partial<BundleWindow>).client?.status === 'ready', undefined, { message: 'client ready' })
const serverSide = (page: EnginePage) => page.evaluate(() => (window as unknown as BundleWindow).client.call('whoami'))
const tabIdIn = (page: EnginePage) => page.evaluate(() => (window as unknown as BundleWindow).client.tabId)
const token = (page: EnginePage) => page.evaluate(() => (window as unknown as BundleWindow).tokens.get())

async function openBundle(profile: EngineContext, url: string): Promise<EnginePage> {
  const page = await profile.newPage()
  await page.goto(url)
  await waitReady(page)
  return page
}

for (const bundle of Object.keys(PAGES) as (keyof typeof PAGES)[]) {
  test.describe(`the ${bundle} bundle`, () => {
    test.beforeEach(async () => {
      server = await startBundleServer()
    })

    test('should share the token and the session between two tabs, with distinct tab ids', async ({ profile }) => {
      const first = await openBundle(profile, `${server!.url}/${bundle}.html`)
      const second = await openBundle(profile, `${server!.url}/${bundle}.html`)
      const [a, b] = [await serverSide(first), await serverSide(second)]
      expect(a.sessionId).toBe(b.sessionId)
      expect(a.tabId).not.toBe(b.tabId)
      expect(await token(second)).toBe(await token(first))
    })

    test('should keep the tab id across a reload', async ({ profile }) => {
      const page = await openBundle(profile, `${server!.url}/${bundle}.html`)
      const before = await serverSide(page)
      await page.reload()
      await waitReady(page)
      expect(await serverSide(page)).toEqual(before)
    })

    for (const locks of ['Web Locks', 'no Web Locks (BroadcastChannel claim)'] as const) {
      test(`should give a duplicated tab a new tab id and leave the original alone, with ${locks}`, async ({ profile }) => {
        const url = `${server!.url}/${bundle}.html${locks === 'Web Locks' ? '' : '?no-locks'}`
        const original = await openBundle(profile, url)
        const originalId = await tabIdIn(original)
        expect(await original.evaluate(() => Object.keys(sessionStorage))).toContain('session-socket:tab-id')
        expect(await original.evaluate(() => navigator.locks !== undefined)).toBe(locks === 'Web Locks')

        const duplicate = await openDuplicate(profile, original)
        await waitReady(duplicate)
        const duplicateId = await tabIdIn(duplicate)
        expect(duplicateId).not.toBe(originalId)
        expect(await duplicate.evaluate(() => sessionStorage.getItem('session-socket:tab-id'))).toBe(duplicateId)
        expect((await serverSide(duplicate)).sessionId).toBe((await serverSide(original)).sessionId)
        // The original keeps its id and its socket: the server did not replace it.
        expect(await serverSide(original)).toMatchObject({ tabId: originalId })
        expect(await original.evaluate(() => (window as unknown as BundleWindow).client.status)).toBe('ready')
      })
    }
  })
}

test('should give a duplicated tab of the demo a new id while the original keeps its own, even if the original is busy', async ({ profile }) => {
  test.setTimeout(60_000)
  demo = await startDemo()
  const original = await openDemoTab(profile, demo.url)
  const id = await tabIdOf(original)
  const { sessionId } = await whoami(original)
  await recordStatuses(original)
  // The original runs a 1 s long task when the copy starts loading (told over a channel of its
  // own): a busy tab, made certain. A claim over BroadcastChannel would go unanswered; the
  // original's Web Lock is held all the same.
  await original.evaluate(() => {
    new BroadcastChannel('e2e:busy').onmessage = () => {
      const end = Date.now() + 1_000
      while (Date.now() < end);
    }
  })
  const duplicate = await openDuplicate(profile, original, (copy) => copy.evaluate(() => new BroadcastChannel('e2e:busy').postMessage('now')))
  await waitText(duplicate, 'status', 'ready')
  const duplicateId = await tabIdOf(duplicate)
  expect(duplicateId).not.toBe(id)
  expect(await whoami(duplicate)).toEqual({ sessionId, tabId: duplicateId })
  // The original kept its id and its socket.
  await waitText(original, 'status', 'ready')
  expect(await whoami(original)).toEqual({ sessionId, tabId: id })
  for (const page of [original, duplicate]) await waitListedTabs(page, [id, duplicateId])
  expect(await statusTrail(original)).toEqual([])
})
