import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'

/** Debian's nginx (`apt-get install nginx`); the service is never started, we run our own. */
export const NGINX = '/usr/sbin/nginx'

/**
 * The `proxy_set_header` lines of the recommended location (docs/deploy.md): the browser's
 * Host with its port ($http_host), the forwarded client and scheme, and the WebSocket upgrade.
 */
export const RECOMMENDED_HEADERS: Record<string, string> = {
  Host: '$http_host',
  'X-Forwarded-For': '$proxy_add_x_forwarded_for',
  'X-Forwarded-Proto': '$scheme',
  'X-Forwarded-Host': '$http_host',
  Upgrade: '$http_upgrade',
  Connection: '$connection_upgrade',
}

export interface NginxOptions {
  /** The app behind it, on 127.0.0.1. */
  upstreamPort: number
  /**
   * The proxy_set_header lines, name → nginx value; a header left out is what nginx sends by
   * default (Host: the upstream's name, `app`). @default RECOMMENDED_HEADERS
   */
  headers?: Record<string, string>
  /** Terminate TLS (a self-signed certificate for 127.0.0.1, made for this run): the app behind it sees plain HTTP. @default false */
  tls?: boolean
}

export interface Nginx {
  /** http://127.0.0.1:<port>, or https:// with `tls` */
  readonly url: string
  readonly port: number
  /** The nginx.conf it runs. */
  readonly config: string
  /** nginx's error log so far. */
  errorLog(): string
  /** Stops it (SIGTERM, then SIGKILL) and removes its prefix folder. */
  close(): Promise<void>
}

/** nginx.conf for one reverse-proxied server on 127.0.0.1:`port`, everything under `prefix`. */
export function nginxConfig(prefix: string, port: number, options: NginxOptions): string {
  const headers = options.headers ?? RECOMMENDED_HEADERS
  const lines = Object.entries(headers).map(([name, value]) => `      proxy_set_header ${name} ${value};`)
  const listen = options.tls ? `listen 127.0.0.1:${port} ssl;\n    ssl_certificate ${prefix}/cert.pem;\n    ssl_certificate_key ${prefix}/key.pem;` : `listen 127.0.0.1:${port};`
  return `# One process, in the foreground, every file under its own prefix: no root config touched.
daemon off;
master_process off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log info;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  upstream app { server 127.0.0.1:${options.upstreamPort}; }
  server {
    ${listen}
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
${lines.join('\n')}
      proxy_read_timeout 1h;
    }
  }
}
`
}

/** A free loopback port, as the OS hands one out (nginx cannot listen on port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Resolves once something accepts connections on 127.0.0.1:`port`, or rejects when `exited` settles first. */
async function listening(port: number, exited: Promise<unknown>, timeoutMs: number): Promise<void> {
  let gone = false
  void exited.then(() => (gone = true))
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && !gone) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  throw new Error(gone ? 'nginx exited before listening' : `nginx did not listen on ${port} within ${timeoutMs} ms`)
}

/**
 * Starts Debian's nginx as a reverse proxy in front of `upstreamPort`, on a free loopback port,
 * with a generated config in a temp prefix. A port taken between the pick and nginx's bind is
 * picked again (at most 5 times).
 *
 * @example
 * const proxy = await startNginx({ upstreamPort: demo.port })                              // recommended
 * const broken = await startNginx({ upstreamPort: demo.port, headers: { Host: '$host' } })  // drops the port
 */
export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const prefix = mkdtempSync(path.join(tmpdir(), 'ss-nginx-'))
  for (const dir of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(prefix, dir))
  if (options.tls) {
    // A throwaway certificate; the browser context is told to accept it (ignoreHTTPSErrors).
    const subject = ['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']
    const files = ['-keyout', path.join(prefix, 'key.pem'), '-out', path.join(prefix, 'cert.pem')]
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', ...subject, ...files], { stdio: 'ignore' })
  }
  let lastError: unknown
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const config = nginxConfig(prefix, port, options)
    const configPath = path.join(prefix, 'nginx.conf')
    writeFileSync(configPath, config)
    let output = ''
    const child: ChildProcess = spawn(NGINX, ['-p', prefix, '-e', path.join(prefix, 'error.log'), '-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    const errorLog = () => {
      try {
        return readFileSync(path.join(prefix, 'error.log'), 'utf8')
      } catch {
        return ''
      }
    }
    try {
      await listening(port, exited, 5_000)
    } catch (err) {
      child.kill('SIGKILL')
      await exited
      lastError = new Error(`${(err as Error).message}:\n${output}${errorLog()}`)
      if (/Address already in use/.test(errorLog())) continue
      break
    }
    return {
      url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
      port,
      config,
      errorLog,
      async close() {
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 2_000)
        await exited
        clearTimeout(timer)
        rmSync(prefix, { recursive: true, force: true })
      },
    }
  }
  rmSync(prefix, { recursive: true, force: true })
  throw lastError
}
