import { io } from 'socket.io-client'

/** What a raw register got back: the `ss:registered` reply, or the CONNECT refusal's data. */
export type RawRegisterOutcome =
  | { registered: { token: string; tabId: string; restored: boolean; reason: string | null; newSession: boolean } }
  | { refused: { message: string; data: unknown } }

/**
 * Registers once from Node with a plain socket.io-client (no cookie, no browser), presenting
 * `token` in the CONNECT packet as the browser SDK does, and disconnects. For "a stolen or
 * old token is refused" checks.
 *
 * @example
 * const outcome = await registerWithToken(demo.url, oldToken)
 * expect(outcome).toMatchObject({ registered: { restored: false, reason: 'revoked-token' } })
 */
export async function registerWithToken(url: string, token: string | null, options: { tabId?: string; timeoutMs?: number } = {}): Promise<RawRegisterOutcome> {
  const socket = io(url, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    auth: { v: 1, token, tabId: options.tabId ?? 'e2e-raw-register' },
  })
  const timeoutMs = options.timeoutMs ?? 10_000
  let timer: NodeJS.Timeout | undefined
  try {
    return await new Promise<RawRegisterOutcome>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no register reply from ${url} within ${timeoutMs} ms`)), timeoutMs)
      socket.once('ss:registered', (reply) => resolve({ registered: reply }))
      socket.once('connect_error', (err: Error & { data?: unknown }) => resolve({ refused: { message: err.message, data: err.data } }))
    })
  } finally {
    clearTimeout(timer)
    socket.close()
  }
}
