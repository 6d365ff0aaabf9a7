/** A same-origin JSON request; throws with the server's message on a non-2xx answer. */
export async function requestJson<T>(url: string, init: RequestInit = {}): Promise<T | null> {
  const response = await fetch(url, { credentials: 'same-origin', ...init, headers: { Accept: 'application/json', ...init.headers } })
  if (!response.ok) {
    const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null
    throw new Error(body?.error?.message ?? `${init.method ?? 'GET'} ${url} answered ${response.status}`)
  }
  return response.status === 204 ? null : ((await response.json()) as T)
}
