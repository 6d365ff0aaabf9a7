import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'

/**
 * A browser's cookie jar in front of a server: every request through it (HTTP, long-polling,
 * the WebSocket upgrade) gets the jar's cookies, and every Set-Cookie coming back goes into
 * the jar, as a browser would. Lets a Node client behave like one browser profile.
 */
export interface CookieJarProxy {
  url: string
  port: number
  /** Cookie values by name. */
  readonly jar: Map<string, string>
  /** Points the proxy at another upstream port (a restarted server). */
  retarget(port: number): void
  /** Destroys every open connection (the jar is kept). */
  cut(): void
  close(): Promise<void>
}

/** Puts Set-Cookie lines into a jar (name → value), dropping expired ones, as a browser does. */
export function absorb(jar: Map<string, string>, setCookie: string | string[] | undefined): void {
  for (const line of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
    const [pair = '', ...attributes] = line.split(';')
    const eq = pair.indexOf('=')
    if (eq < 1) continue
    const name = pair.slice(0, eq).trim()
    const expired = attributes.some((attribute) => {
      const [key = '', value = ''] = attribute.trim().split('=')
      if (key.toLowerCase() === 'max-age') return Number(value) <= 0
      if (key.toLowerCase() === 'expires') return new Date(value).getTime() <= Date.now()
      return false
    })
    if (expired) jar.delete(name)
    else jar.set(name, pair.slice(eq + 1).trim())
  }
}

/** The Cookie header a browser would send from this jar, or undefined when it is empty. */
export function cookieHeader(jar: Map<string, string>): string | undefined {
  if (jar.size === 0) return undefined
  return [...jar].map(([name, value]) => `${name}=${value}`).join('; ')
}

export async function startCookieJarProxy(upstreamPort: number): Promise<CookieJarProxy> {
  let target = upstreamPort
  const jar = new Map<string, string>()
  const open = new Set<net.Socket>()

  const server = http.createServer((req, res) => {
    const headers = { ...req.headers }
    delete headers.cookie
    const cookie = cookieHeader(jar)
    if (cookie) headers.cookie = cookie
    const upstream = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers, agent: false }, (response) => {
      absorb(jar, response.headers['set-cookie'])
      res.writeHead(response.statusCode ?? 502, response.headers)
      response.pipe(res)
    })
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
  })
  server.on('connection', (socket) => {
    open.add(socket)
    socket.once('close', () => open.delete(socket))
  })
  server.on('upgrade', (req, client, head) => {
    const upstream = net.connect(target, '127.0.0.1')
    open.add(upstream)
    upstream.once('close', () => open.delete(upstream))
    const lines = [`${req.method} ${req.url} HTTP/1.1`]
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i]!.toLowerCase() !== 'cookie') lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`)
    }
    const cookie = cookieHeader(jar)
    if (cookie) lines.push(`Cookie: ${cookie}`)
    upstream.write(lines.join('\r\n') + '\r\n\r\n')
    if (head.length) upstream.write(head)
    // Read the response head for Set-Cookie, then splice the two sockets together.
    let buffered = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      const end = buffered.indexOf('\r\n\r\n')
      if (end === -1) return
      upstream.off('data', onData)
      const headLines = buffered.subarray(0, end).toString('latin1').split('\r\n')
      absorb(jar, headLines.filter((line) => /^set-cookie:/i.test(line)).map((line) => line.slice(line.indexOf(':') + 1).trim()))
      client.write(buffered)
      upstream.pipe(client)
      client.pipe(upstream)
    }
    upstream.on('data', onData)
    const destroy = () => {
      client.destroy()
      upstream.destroy()
    }
    upstream.on('error', destroy)
    client.on('error', destroy)
    upstream.on('close', destroy)
    client.on('close', destroy)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    jar,
    retarget(next) {
      target = next
    },
    cut() {
      for (const socket of open) socket.destroy()
    },
    close() {
      for (const socket of open) socket.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}
