import { afterEach, describe, expect, it, vi } from 'vitest'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'
import { startCookieJarProxy, type CookieJarProxy } from '@session-socket/test-helpers/cookie-jar-proxy'
import { closeAllClients, makeBrowser, waitForStatus } from '@session-socket/test-helpers/clients'
import { rawRegister, type RawClient } from './helpers/raw-client.js'

let server: TestServer | undefined
let proxy: CookieJarProxy | undefined
const raws: RawClient[] = []

afterEach(async () => {
  closeAllClients()
  for (const raw of raws.splice(0)) raw.close()
  await proxy?.close()
  await server?.close()
  proxy = server = undefined
})

/** A server whose `signout.everywhere` method ends every session of the caller's user, and `hold` waits for release. */
async function start(): Promise<{ releases: Array<() => void> }> {
  const releases: Array<() => void> = []
  server = await startTestServer({
    ss: { identify: (session) => session.userId },
    setup: (ss) => {
      ss.method('signout.everywhere', async (_params, ctx) => {
        await ss.endUser(ctx.session!.userId!)
        return { ended: true }
      })
      ss.method('hold', () => new Promise<string>((resolve) => releases.push(() => resolve('released'))), { session: false })
    },
  })
  return { releases }
}

/** A raw client signed in as `user`: its cookie rides on the WebSocket handshake. */
async function signedIn(user: string, tabId: string): Promise<{ raw: RawClient; log: string[] }> {
  const response = await fetch(`${server!.url}/login?user=${user}`, { method: 'POST' })
  const cookie = response.headers.getSetCookie()[0]!.split(';')[0]!
  const raw = await rawRegister(server!.url, { token: null, tabId }, { Cookie: cookie })
  raws.push(raw)
  // What the client sees, in order: answers, server events, the disconnect.
  const log: string[] = []
  raw.socket.onAny((event: string, payload: unknown) => log.push(`${event} ${JSON.stringify(payload)}`))
  raw.socket.on('disconnect', (reason) => log.push(`disconnect ${reason}`))
  return { raw, log }
}

/** Sends a call; its answer goes into `log` as it arrives, among the events. */
function call(raw: RawClient, log: string[], id: string, m: string): Promise<unknown> {
  return new Promise((resolve) =>
    raw.socket.timeout(3000).emit('ss:call', { id, m }, (err: Error | null, reply: { ok: boolean; e?: { code: string } }) => {
      log.push(`${id} ${err ? 'no answer' : reply.ok ? 'ok' : reply.e!.code}`)
      resolve(err ? { ok: false, e: { code: 'no answer' } } : reply)
    }),
  )
}

describe('calls pending when the session ends', () => {
  it('should answer the sign-out-everywhere caller, its calls waiting behind it and its running calls SESSION_ENDED before ss:ended and the disconnect', async () => {
    const { releases } = await start()
    const { raw, log } = await signedIn('bob', 'caller-tab')
    const running = call(raw, log, 'c1', 'hold')
    await vi.waitFor(() => expect(releases).toHaveLength(1))
    const signOut = call(raw, log, 'c2', 'signout.everywhere')
    // A session call sent after it waits for its turn in the session.
    const queued = call(raw, log, 'c3', 'whoami')
    const replies = await Promise.all([running, signOut, queued])
    for (const reply of replies) expect(reply).toMatchObject({ ok: false, e: { code: 'SESSION_ENDED', message: 'the session has ended (logout)' } })
    await vi.waitFor(() => expect(log).toContain('disconnect io server disconnect'))
    expect(log.slice(3)).toEqual(['ss:ended {"reason":"logout"}', 'disconnect io server disconnect'])
    expect(log.slice(0, 3).sort()).toEqual(['c1 SESSION_ENDED', 'c2 SESSION_ENDED', 'c3 SESSION_ENDED'])
    // The handler still running ends later; its answer is not sent twice.
    releases[0]!()
  })

  it("should answer SESSION_ENDED the calls of another browser's tab when its session ends by a logout elsewhere", async () => {
    const { releases } = await start()
    const { raw, log } = await signedIn('carol', 'phone-tab')
    const held = call(raw, log, 'c1', 'hold')
    await vi.waitFor(() => expect(releases).toHaveLength(1))
    const { raw: laptop, log: laptopLog } = await signedIn('carol', 'laptop-tab')
    expect(await call(laptop, laptopLog, 'c1', 'signout.everywhere')).toMatchObject({ ok: false, e: { code: 'SESSION_ENDED' } })
    expect(await held).toMatchObject({ ok: false, e: { code: 'SESSION_ENDED', message: 'the session has ended (logout)' } })
    await vi.waitFor(() => expect(log).toEqual(['c1 SESSION_ENDED', 'ss:ended {"reason":"logout"}', 'disconnect io server disconnect']))
  })

  it('should reject every call the browser client holds with SESSION_ENDED, the caller of sign-out-everywhere included', async () => {
    const { releases } = await start()
    proxy = await startCookieJarProxy(server!.port)
    await fetch(`${proxy.url}/login?user=dave`, { method: 'POST' })
    const tab = makeBrowser(proxy.url).open()
    await waitForStatus(tab)
    const held = tab.call('hold')
    await vi.waitFor(() => expect(releases).toHaveLength(1))
    const calls = [held, tab.call('signout.everywhere'), tab.call('whoami')]
    const outcomes = await Promise.allSettled(calls)
    for (const outcome of outcomes) expect(outcome).toMatchObject({ status: 'rejected', reason: { code: 'SESSION_ENDED' } })
    expect(tab.state).toEqual({ status: 'ended', reason: 'logout' })
    await expect(tab.call('whoami')).rejects.toMatchObject({ code: 'SESSION_ENDED' })
  })
})
