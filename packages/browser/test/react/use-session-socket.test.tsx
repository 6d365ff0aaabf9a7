// @vitest-environment jsdom
import { StrictMode, useEffect, useLayoutEffect } from 'react'
import { act, cleanup, render, screen, waitFor } from '@testing-library/react'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { memoryTabIdStorage, memoryTokenStorage } from '@session-socket/browser'
import { useSessionSocket, type UseSessionSocketOptions, type UseSessionSocketResult } from '@session-socket/browser/react'
import { startTestServer, type TestServer } from '@session-socket/test-helpers/test-server'

let server: TestServer
let options: UseSessionSocketOptions

beforeEach(async () => {
  server = await startTestServer()
  options = {
    url: server.url,
    tokenStorage: memoryTokenStorage(),
    tabIdStorage: memoryTabIdStorage(),
    page: null,
    closeDelay: 50,
    socketOptions: { transports: ['websocket'] },
  }
})

afterEach(async () => {
  cleanup()
  await server.close()
})

/** Sockets the server holds now. */
const serverSockets = () => server.io.of('/').sockets.size
/** Connections the server has accepted since `count()` was made. */
function countConnections() {
  let connections = 0
  server.io.on('connection', () => connections++)
  return () => connections
}

function Status({ name, seen }: { name: string; seen?: (result: UseSessionSocketResult) => void }) {
  const result = useSessionSocket(options)
  seen?.(result)
  return (
    <p data-testid={name}>
      {result.status} {result.tabId}
    </p>
  )
}

describe('useSessionSocket', () => {
  it('should re-render on status changes up to ready', async () => {
    const statuses: string[] = []
    render(<Status name="a" seen={(result) => statuses.push(result.status)} />)
    await waitFor(() => expect(screen.getByTestId('a').textContent).toMatch(/^ready \S{16}$/), { timeout: 5000 })
    expect(statuses[0]).toBe('connecting')
    expect(statuses).toContain('ready')
  })

  it('should show rejoining, never offline, while the tab follows a sign-in', async () => {
    const statuses: string[] = []
    render(<Status name="a" seen={(result) => statuses.push(result.status)} />)
    await waitFor(() => expect(screen.getByTestId('a').textContent).toMatch(/^ready/), { timeout: 5000 })
    const before = statuses.length
    // What the server sends every tab of a session that a sign-in regenerated.
    act(() => void server.io.of('/').emit('ss:rejoin'))
    await waitFor(() => expect(statuses.slice(before)).toContain('rejoining'), { timeout: 5000 })
    await waitFor(() => expect(screen.getByTestId('a').textContent).toMatch(/^ready/), { timeout: 5000 })
    expect([...new Set(statuses.slice(before))]).toEqual(['rejoining', 'ready'])
  })

  it('should open one socket under StrictMode', async () => {
    const connections = countConnections()
    render(
      <StrictMode>
        <Status name="a" />
      </StrictMode>,
    )
    await waitFor(() => expect(screen.getByTestId('a').textContent).toMatch(/^ready/), { timeout: 5000 })
    // StrictMode's unmount and remount happened; the deferred close must not have fired.
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(connections()).toBe(1)
    expect(serverSockets()).toBe(1)
    expect(screen.getByTestId('a').textContent).toMatch(/^ready/)
  })

  it('should reach ready when the mount effect runs after the close delay (a slow page closed the client before it mounted)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    // Layout effects run in the commit, before passive effects: time passing here is a page too
    // busy to run the hook's mount effect before the render-time close timer fires.
    function SlowPage() {
      useLayoutEffect(() => {
        vi.advanceTimersByTime(options.closeDelay! + 1)
        vi.useRealTimers()
      }, [])
      return null
    }
    render(
      <>
        <Status name="a" />
        <SlowPage />
      </>,
    )
    await waitFor(() => expect(screen.getByTestId('a').textContent).toMatch(/^ready/), { timeout: 5000 })
    expect(serverSockets()).toBe(1)
  })

  it('should share one socket between components with the same url and path', async () => {
    const connections = countConnections()
    const results: UseSessionSocketResult[] = []
    render(
      <>
        <Status name="a" seen={(result) => results.push(result)} />
        <Status name="b" seen={(result) => results.push(result)} />
      </>,
    )
    await waitFor(() => expect(screen.getByTestId('b').textContent).toMatch(/^ready/), { timeout: 5000 })
    expect(screen.getByTestId('a').textContent).toBe(screen.getByTestId('b').textContent)
    expect(new Set(results.map((result) => result.socket)).size).toBe(1)
    expect(connections()).toBe(1)
  })

  it('should keep call and on stable across renders', async () => {
    const results: UseSessionSocketResult[] = []
    render(<Status name="a" seen={(result) => results.push(result)} />)
    await waitFor(() => expect(screen.getByTestId('a').textContent).toMatch(/^ready/), { timeout: 5000 })
    expect(results.length).toBeGreaterThan(1)
    expect(new Set(results.map((result) => result.call)).size).toBe(1)
    expect(new Set(results.map((result) => result.on)).size).toBe(1)
    await act(async () => {
      expect(await results.at(-1)!.call('counter.increment', { by: 2 })).toEqual({ count: 2 })
    })
  })

  it('should deliver server events through on()', async () => {
    function Events() {
      const { on, status } = useSessionSocket(options)
      useEffect(() => on('news', (text: string) => (document.title = text)), [on])
      return <p data-testid="events">{status}</p>
    }
    render(<Events />)
    await waitFor(() => expect(screen.getByTestId('events').textContent).toBe('ready'), { timeout: 5000 })
    server.io.emit('news', 'hello')
    await waitFor(() => expect(document.title).toBe('hello'))
  })

  it('should close the socket after the last component unmounts, once the close delay has passed', async () => {
    const { unmount } = render(
      <>
        <Status name="a" />
        <Status name="b" />
      </>,
    )
    await waitFor(() => expect(screen.getByTestId('a').textContent).toMatch(/^ready/), { timeout: 5000 })
    const socket = { current: undefined as UseSessionSocketResult['socket'] | undefined }
    render(<Status name="c" seen={(result) => (socket.current = result.socket)} />)
    unmount()
    await new Promise((resolve) => setTimeout(resolve, 150))
    // "c" still holds it.
    expect(socket.current!.status).toBe('ready')
    cleanup()
    expect(socket.current!.status).toBe('ready')
    await waitFor(() => expect(socket.current!.status).toBe('closed'), { timeout: 1000 })
    await waitFor(() => expect(serverSockets()).toBe(0), { timeout: 1000 })
  })

  it('should open a new socket for a component mounted after the shared one closed', async () => {
    const first = render(<Status name="a" />)
    await waitFor(() => expect(screen.getByTestId('a').textContent).toMatch(/^ready/), { timeout: 5000 })
    first.unmount()
    await waitFor(() => expect(serverSockets()).toBe(0), { timeout: 1000 })
    render(<Status name="b" />)
    await waitFor(() => expect(screen.getByTestId('b').textContent).toMatch(/^ready/), { timeout: 5000 })
  })
})
