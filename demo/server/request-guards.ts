import type { NextFunction, Request, Response } from 'express'

/** The longest sign-in name, in characters. */
export const MAX_NAME = 40

/**
 * Refuses cross-site POSTs: SameSite=Lax already keeps the cookie off them, this says so plainly.
 *
 * @example
 * app.post('/logout', sameOrigin, logout)
 */
export function sameOrigin(req: Request, res: Response, next: NextFunction): void {
  const origin = req.headers.origin
  if (origin !== undefined) {
    let host: string | undefined
    try {
      host = new URL(origin).host
    } catch {
      host = undefined
    }
    // req.host: X-Forwarded-Host from a proxy TRUST_PROXY trusts, else Host.
    if (host !== req.host) {
      res.status(403).json({ error: { code: 'FORBIDDEN', message: `Origin ${origin} is not allowed` } })
      return
    }
  }
  next()
}

/**
 * A sign-in name, trimmed, of 1 to MAX_NAME characters; undefined otherwise.
 *
 * @example
 * validName('  Ada ') // 'Ada'
 */
export function validName(raw: unknown): string | undefined {
  const name = typeof raw === 'string' ? raw.trim() : ''
  return name.length === 0 || name.length > MAX_NAME ? undefined : name
}

/**
 * Whether the request is a browser's page navigation (a form post) rather than fetch().
 *
 * @example
 * if (wantsHtml(req)) res.redirect(303, '/')
 */
export const wantsHtml = (req: Request) => (req.headers.accept ?? '').includes('text/html')
