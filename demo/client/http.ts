/** A non-2xx answer, with the server's error code when it sent one. */
export class HttpError extends Error {
  override name = 'HttpError'
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | undefined,
  ) {
    super(message)
  }
}

/** A same-origin JSON request; throws HttpError on a non-2xx answer. */
export async function requestJson<T>(url: string, init: RequestInit = {}): Promise<T | null> {
  const response = await fetch(url, { credentials: 'same-origin', ...init, headers: { Accept: 'application/json', ...init.headers } })
  if (!response.ok) {
    const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null
    throw new HttpError(body?.error?.message ?? `${init.method ?? 'GET'} ${url} answered ${response.status}`, response.status, body?.error?.code)
  }
  return response.status === 204 ? null : ((await response.json()) as T)
}
