import { afterEach, describe, expect, it, vi } from 'vitest'
import { io as ioClient, type Socket } from 'socket.io-client'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'

let server: TestServer | undefined
const sockets: Socket[] = []

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close()
  await server?.close()
  server = undefined
  vi.restoreAllMocks()
})

/** A WebSocket handshake with the given headers; resolves 'connected' or the connect error's message. */
function handshake(url: string, headers: Record<string, string>): Promise<string> {
  const socket = ioClient(url, { transports: ['websocket'], forceNew: true, reconnection: false, extraHeaders: headers })
  sockets.push(socket)
  return new Promise((resolve) => {
    socket.once('connect', () => resolve('connected'))
    socket.once('connect_error', (err) => resolve(err.message))
  })
}

describe('createRefusalWarning', () => {
  it("should warn once, at the first handshake refused behind a proxy that rewrote Host (nginx's default), naming the likely fix", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    server = await startTestServer()
    const behindProxy = { Origin: 'https://app.example.com', Host: 'backend:3000', 'X-Forwarded-Host': 'app.example.com' }
    expect(await handshake(server.url, behindProxy)).not.toBe('connected')
    expect(await handshake(server.url, behindProxy)).not.toBe('connected')
    expect(warn).toHaveBeenCalledTimes(1)
    const [message] = warn.mock.calls[0] as [string]
    expect(message).toMatch(/refused a Socket\.IO handshake from Origin https:\/\/app\.example\.com: it is not the host the server was asked for \(backend:3000\)/)
    expect(message).toMatch(/X-Forwarded-Host \(app\.example\.com\) came from 127\.0\.0\.1, which trustProxy does not trust/)
    expect(message).toMatch(/proxy_set_header Host \$http_host/)
  })

  it('should point at allowedOrigins when a list is in use, and never warn for handshakes it lets in', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {})
    server = await startTestServer({ ss: { allowedOrigins: ['https://app.example.com'] } })
    expect(await handshake(server.url, { Origin: 'https://app.example.com' })).toBe('connected')
    expect(warn).not.toHaveBeenCalled()
    expect(await handshake(server.url, { Origin: 'https://other.example.com' })).not.toBe('connected')
    expect(warn).toHaveBeenCalledTimes(1)
    expect(warn.mock.calls[0]![0]).toMatch(/Origin https:\/\/other\.example\.com: it is not in allowedOrigins\. If it is your site's origin, add it to allowedOrigins/)
  })
})
