import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import WebDriver, { type Client } from 'webdriver'
import { pollInPage, unexpired, type Engine, type EngineContext, type EngineCookie, type EnginePage, type PageFunction } from './driver.js'
import { startXvfb, type Xvfb } from './xvfb.js'

/** WebKitGTK's WebDriver server (Debian: webkit2gtk-driver) and the browser it automates. */
export const WEBKIT_DRIVER = 'WebKitWebDriver'
export const MINIBROWSER_PATH = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser'

const CAPABILITIES = {
  browserName: 'MiniBrowser',
  'webkitgtk:browserOptions': { binary: MINIBROWSER_PATH, args: ['--automation'] },
  // WebKitGTK 2.50 as Debian builds it has no WebDriver BiDi: a session that asks for it is refused.
  'wdio:enforceWebDriverClassic': true,
}

const drivers = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of drivers) child.kill('SIGKILL')
})

/**
 * WebKit (Safari's engine) as WebKitGTK's MiniBrowser, through WebKitWebDriver over classic
 * WebDriver (WebdriverIO's `webdriver` client), on an Xvfb display of this engine's own. A
 * profile is a WebDriver session: its own driver process and MiniBrowser with ephemeral
 * website data (one session per driver process is all WebKitWebDriver allows); a tab is a
 * window of that session.
 *
 * @example
 * const engine = await launchWebKit()
 * const context = await engine.newContext()
 */
export async function launchWebKit(): Promise<Engine> {
  const xvfb = await startXvfb()
  const contexts = new Set<EngineContext>()
  return {
    name: 'webkit',
    async newContext() {
      const context = await openSession(xvfb, () => contexts.delete(context))
      contexts.add(context)
      return context
    },
    async close() {
      await Promise.all([...contexts].map((context) => context.close()))
      await xvfb.close()
    },
  }
}

/** A free loopback port, for a driver that must be told one. */
async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Starts WebKitWebDriver on a free port; resolves once it answers `GET /status`. */
async function startDriver(xvfb: Xvfb): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const child = spawn(WEBKIT_DRIVER, [`--port=${port}`, '--host=127.0.0.1'], {
      env: { ...process.env, DISPLAY: xvfb.display },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    drivers.add(child)
    let output = ''
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    let exited = false
    child.once('exit', () => {
      exited = true
      drivers.delete(child)
    })
    child.once('error', () => undefined)
    const deadline = Date.now() + 10_000
    while (!exited && Date.now() < deadline) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/status`)
        if (response.ok) return { child, port }
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    child.kill('SIGKILL')
    // Another process took the port between freePort() and the driver's listen: try another.
    if (attempt >= 3) throw new Error(`${WEBKIT_DRIVER} did not start (apt-get install -y webkit2gtk-driver):\n${output}`)
  }
}

async function openSession(xvfb: Xvfb, onClose: () => void): Promise<EngineContext> {
  const { child, port } = await startDriver(xvfb)
  let client: Client
  try {
    client = await WebDriver.newSession({ hostname: '127.0.0.1', port, capabilities: CAPABILITIES, logLevel: 'warn', connectionRetryCount: 1 })
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }

  // Classic WebDriver acts on the session's current window: each command of a tab switches to
  // it first, and commands of the session run one at a time.
  let queue: Promise<unknown> = Promise.resolve()
  let current = await client.getWindowHandle()
  /** The window the session started with, until a tab takes it. */
  let spare: string | undefined = current
  const open = new Set<string>()
  const run = <T>(handle: string | null, command: () => Promise<T>): Promise<T> => {
    const next = queue.then(async () => {
      if (handle !== null && handle !== current) {
        await client.switchToWindow(handle)
        current = handle
      }
      return command()
    })
    queue = next.catch(() => undefined)
    return next
  }
  /** Any open tab, for the cookie commands (they act on the current document's host). */
  const anyTab = () => {
    const handle = open.values().next().value
    if (handle === undefined) throw new Error('open a page on the host first: WebDriver reads cookies through a document')
    return handle
  }
  const hostCookies = async (url: string) => {
    const host = new URL(url).hostname
    return (await client.getAllCookies()).filter((cookie) => (cookie.domain ?? host).replace(/^\./, '') === host)
  }
  let closed = false

  const newPage = async (): Promise<EnginePage> => {
    // New Window acts from an open window: after a tab's window closed, from another one.
    const from = spare ?? (open.has(current) ? current : (open.values().next().value ?? null))
    const handle = await run(from, async () => {
      if (spare !== undefined) {
        const taken = spare
        spare = undefined
        return taken
      }
      // A window, not a tab: a background tab is hidden (and throttled), as in a real browser.
      return (await client.createWindow('window')).handle
    })
    open.add(handle)
    const evaluate = <R, A>(fn: PageFunction<A, R>, arg?: A) =>
      run(handle, () => client.executeScript(`return (${String(fn)}).apply(null, arguments)`, arg === undefined ? [] : [arg])) as Promise<R>
    return {
      goto: (url) => run(handle, () => client.navigateTo(url)).then(() => undefined),
      reload: () => run(handle, () => client.refresh()).then(() => undefined),
      evaluate,
      waitFor: (fn, arg, options) => pollInPage(evaluate, fn, arg, options),
      async close() {
        if (!open.delete(handle)) return
        await run(handle, async () => {
          if (open.size === 0) {
            // Closing the last window would end the session: keep it, blank, for the next tab.
            await client.navigateTo('about:blank')
            spare = handle
          } else {
            await client.closeWindow()
            current = ''
          }
        })
      },
    }
  }

  return {
    newPage,
    cookies: (url) =>
      run(anyTab(), async () =>
        unexpired((await hostCookies(url)).map((cookie): EngineCookie => ({
          name: cookie.name,
          value: cookie.value,
          httpOnly: cookie.httpOnly ?? false,
          ...(cookie.expiry ? { expires: cookie.expiry } : {}),
        }))),
      ),
    clearCookies: (url) =>
      run(anyTab(), async () => {
        for (const cookie of await hostCookies(url)) await client.deleteCookie(cookie.name)
      }),
    expireCookie: (url, name, inMs) =>
      run(anyTab(), async () => {
        const cookie = (await hostCookies(url)).find((c) => c.name === name)
        if (!cookie) throw new Error(`no cookie ${name} for ${url}`)
        await client.addCookie({ ...cookie, expiry: Math.ceil((Date.now() + inMs) / 1000) })
      }),
    async close() {
      if (closed) return
      closed = true
      onClose()
      await queue
      await client.deleteSession().catch(() => undefined)
      child.kill('SIGTERM')
    },
  }
}
