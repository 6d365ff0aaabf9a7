import 'fake-indexeddb/auto'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { idbTokenStorage, type Logger } from '@session-socket/browser'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'

let server: TestServer | undefined
let databases = 0
/** A database of its own per test: fake-indexeddb lives as long as the test file. */
const freshDatabase = () => `session-socket-test-${++databases}`

afterEach(async () => {
  vi.unstubAllGlobals()
  closeAllClients()
  await server?.close()
  server = undefined
})

function recordingLogger() {
  const lines: { level: string; message: string }[] = []
  const logger: Logger = (level, message) => lines.push({ level, message })
  return { logger, warnings: () => lines.filter((line) => line.level === 'warn') }
}

/** Exercises a storage the way the client does, and returns what it read. */
async function roundTrip(storage: ReturnType<typeof idbTokenStorage>) {
  const before = await storage.get()
  await storage.set('token-1')
  const stored = await storage.get()
  await storage.delete('token-1')
  return { before, stored, after: await storage.get() }
}

describe('idbTokenStorage', () => {
  it('should share the token between instances, as tabs of one browser do', async () => {
    const database = freshDatabase()
    const tabA = idbTokenStorage({ database })
    const tabB = idbTokenStorage({ database })
    expect(await tabB.get()).toBeNull()
    await tabA.set('token-a')
    expect(await tabB.get()).toBe('token-a')
  })

  it('should delete the token only while it is still the expected one', async () => {
    const database = freshDatabase()
    const tabA = idbTokenStorage({ database })
    const tabB = idbTokenStorage({ database })
    await tabA.set('old')
    await tabB.set('new')
    await tabA.delete('old')
    expect(await tabA.get()).toBe('new')
    await tabA.delete('new')
    expect(await tabB.get()).toBeNull()
  })

  it('should keep one session for a browser across clients through IndexedDB', async () => {
    server = await startTestServer()
    const database = freshDatabase()
    const first = makeBrowser(server.url).open({ tokenStorage: idbTokenStorage({ database }), page: null })
    await waitForStatus(first)
    const { sessionId } = (await first.call('whoami')) as { sessionId: string }
    first.close()
    const second = makeBrowser(server.url).open({ tokenStorage: idbTokenStorage({ database }), page: null })
    expect(await waitForStatus(second)).toMatchObject({ restored: true })
    expect(await second.call('whoami')).toMatchObject({ sessionId })
  })

  it('should fall back to memory with one warning when indexedDB.open throws', async () => {
    vi.stubGlobal('indexedDB', {
      open() {
        throw new DOMException('The operation is insecure.', 'SecurityError')
      },
    })
    const { logger, warnings } = recordingLogger()
    const storage = idbTokenStorage({ logger })
    expect(await roundTrip(storage)).toEqual({ before: null, stored: 'token-1', after: null })
    await storage.set('token-2')
    expect(await storage.get()).toBe('token-2')
    expect(warnings()).toHaveLength(1)
    expect(warnings()[0]!.message).toMatch(/IndexedDB is unavailable/)
  })

  it('should fall back to memory with one warning when there is no IndexedDB at all', async () => {
    vi.stubGlobal('indexedDB', undefined)
    const { logger, warnings } = recordingLogger()
    expect(await roundTrip(idbTokenStorage({ logger }))).toEqual({ before: null, stored: 'token-1', after: null })
    expect(warnings()).toHaveLength(1)
  })

  it('should fall back to memory with one warning when opening fails later, as in private mode', async () => {
    vi.stubGlobal('indexedDB', {
      open() {
        const request: { error: DOMException; onerror?: () => void } = { error: new DOMException('A mutation operation was attempted on a database that did not allow mutations.', 'InvalidStateError') }
        setTimeout(() => request.onerror?.())
        return request
      },
    })
    const { logger, warnings } = recordingLogger()
    expect(await roundTrip(idbTokenStorage({ logger }))).toEqual({ before: null, stored: 'token-1', after: null })
    expect(warnings()).toHaveLength(1)
  })

  it('should fall back to memory when IndexedDB never answers', async () => {
    vi.stubGlobal('indexedDB', { open: () => ({}) })
    const { logger, warnings } = recordingLogger()
    const started = Date.now()
    expect(await roundTrip(idbTokenStorage({ logger, timeout: 50 }))).toEqual({ before: null, stored: 'token-1', after: null })
    expect(Date.now() - started).toBeLessThan(1000)
    expect(warnings()).toHaveLength(1)
  })

  it('should let a client reach ready with IndexedDB broken', async () => {
    vi.stubGlobal('indexedDB', {
      open() {
        throw new DOMException('The operation is insecure.', 'SecurityError')
      },
    })
    server = await startTestServer()
    const { logger, warnings } = recordingLogger()
    const tab = makeBrowser(server.url).open({ tokenStorage: idbTokenStorage({ logger }), page: null })
    await waitForStatus(tab)
    expect(warnings()).toHaveLength(1)
  })
})
