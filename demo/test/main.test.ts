import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { io } from 'socket.io-client'
import { startDemoChild, type DemoChild } from './helpers/demo-child.js'

const dirs: string[] = []
const demos: DemoChild[] = []
const sockets: net.Socket[] = []

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.destroy()
  for (const demo of demos.splice(0)) demo.proc.kill('SIGKILL')
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function start(env: Record<string, string> = {}): DemoChild {
  const dir = mkdtempSync(path.join(tmpdir(), 'ss-demo-main-'))
  dirs.push(dir)
  const demo = startDemoChild({ PORT: '0', DATA_DIR: dir, SESSION_SECRETS: 'test-secret', SS_TEST: '1', SHUTDOWN_TIMEOUT_MS: '3000', ...env })
  demos.push(demo)
  return demo
}

/**
 * Opens an Engine.IO WebSocket by hand and then never answers: not the server's close frame, not
 * its pings, and the TCP connection stays open (python-engineio leaves it so). Resolves once the
 * server's Engine.IO open packet arrived.
 */
function deafWebSocket(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname)
    sockets.push(socket)
    socket.once('error', reject)
    socket.once('connect', () => {
      socket.write(
        [
          'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1',
          `Host: ${hostname}:${port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          'Sec-WebSocket-Version: 13',
          '',
          '',
        ].join('\r\n'),
      )
    })
    let seen = ''
    const onData = (chunk: Buffer) => {
      seen += chunk.toString('latin1')
      // The 101, then a text frame with the Engine.IO open packet ("0{"sid":…}").
      if (seen.startsWith('HTTP/1.1 101') && seen.includes('0{"sid"')) {
        socket.off('data', onData)
        // Keep reading (so the server's writes never block), answer nothing.
        socket.on('data', () => {})
        resolve(socket)
      }
    }
    socket.on('data', onData)
  })
}

describe('demo shutdown', () => {
  it('should exit 0 well under a second on SIGTERM although a WebSocket client never closes its TCP connection', async () => {
    const demo = start()
    const url = await demo.listening()
    const deaf = await deafWebSocket(url)
    const sent = performance.now()
    demo.proc.kill('SIGTERM')
    const { code, at } = await demo.exited
    expect(code, demo.output()).toBe(0)
    expect(at - sent).toBeLessThan(1000)
    expect(demo.output()).toMatch(/demo: stopped in \d+ ms/)
    // The server ended the connection itself.
    expect(deaf.readableEnded || deaf.destroyed).toBe(true)
  })

  it('should exit 0 at once on SIGTERM with a Socket.IO client that closes as it should', async () => {
    const demo = start()
    const url = await demo.listening()
    const client = io(url, { transports: ['websocket'], reconnection: false, auth: { v: 1, token: null, tabId: 'polite-tab' } })
    await new Promise((resolve) => client.once('ss:registered', resolve))
    const sent = performance.now()
    demo.proc.kill('SIGTERM')
    const { code, at } = await demo.exited
    client.close()
    expect(code, demo.output()).toBe(0)
    expect(at - sent).toBeLessThan(1000)
  })
})
