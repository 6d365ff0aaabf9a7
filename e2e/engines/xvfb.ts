import { spawn, type ChildProcess } from 'node:child_process'

/** A virtual X display for a browser that needs one (WebKitGTK's MiniBrowser has no headless mode). */
export interface Xvfb {
  /** `:N`, for `DISPLAY`. */
  display: string
  close(): Promise<void>
}

const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/**
 * Starts `Xvfb` on the first free display: Xvfb picks it itself (`-displayfd`) and writes its
 * number on a pipe, so concurrent workers and other users of the machine never collide.
 *
 * @example
 * const xvfb = await startXvfb()
 * spawn('WebKitWebDriver', ['--port=4444'], { env: { ...process.env, DISPLAY: xvfb.display } })
 * await xvfb.close()
 */
export async function startXvfb(options: { timeoutMs?: number } = {}): Promise<Xvfb> {
  const timeoutMs = options.timeoutMs ?? 10_000
  const child = spawn('Xvfb', ['-displayfd', '3', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp', '-noreset'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  const exited = new Promise<void>((resolve) => child.once('exit', () => (running.delete(child), resolve())))
  let timer: NodeJS.Timeout | undefined
  try {
    const display = await new Promise<string>((resolve, reject) => {
      let out = ''
      child.stdio[3]!.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8')
        const match = /^(\d+)\n/.exec(out)
        if (match) resolve(`:${match[1]}`)
      })
      child.once('error', (err) => reject(new Error(`could not start Xvfb (${err.message}): apt-get install -y xvfb`)))
      void exited.then(() => reject(new Error(`Xvfb exited before it was ready:\n${stderr}`)))
      timer = setTimeout(() => reject(new Error(`Xvfb named no display within ${timeoutMs} ms:\n${stderr}`)), timeoutMs)
    })
    return {
      display,
      async close() {
        child.kill('SIGTERM')
        await exited
      },
    }
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  } finally {
    clearTimeout(timer)
  }
}
