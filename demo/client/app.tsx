import { useCallback, useEffect, useState, useSyncExternalStore } from 'react'
import type { SessionSocket } from '@session-socket/browser'
import { useSessionSocket } from '@session-socket/browser/react'
import type { AppState, CounterEvent, DemoMethods, TabView } from '../server/api-types.js'
import { CounterCard } from './counter-card.js'
import { HttpError, requestJson } from './http.js'
import { SOCKET_OPTIONS, cookiesOf, restoreSessionCookie, storyOf } from './session.js'
import { SignInCard } from './sign-in-card.js'
import { StatusBar } from './status-bar.js'
import { TabList } from './tab-list.js'
import { TryIt } from './try-it.js'

declare global {
  interface Window {
    /** The page's client, with SS_TEST=1 only. */
    client?: SessionSocket<DemoMethods>
  }
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err))

/** The demo page: who you are, one session counter reached two ways, this session's tabs. */
export function App() {
  const { status, state, tabId, call, on, socket } = useSessionSocket<DemoMethods>(SOCKET_OPTIONS)
  const story = storyOf(socket)
  const lastEvent = useSyncExternalStore(story.subscribe, story.getSnapshot)
  const cookies = cookiesOf(socket)
  // false: the browser never keeps the session cookie, so sign-in and sign-out go over the socket.
  const cookiesStick = useSyncExternalStore(cookies.subscribe, cookies.getSnapshot)
  const [me, setMe] = useState<AppState | null>(null)
  const [count, setCount] = useState<number | null>(null)
  const [lastChange, setLastChange] = useState('')
  const [tabs, setTabs] = useState<TabView[]>([])
  const [sessionId, setSessionId] = useState<string | null>(null)
  const [error, setError] = useState('')

  const applyState = useCallback((next: AppState) => {
    setMe(next)
    setCount(next.count)
  }, [])
  const bump = useCallback((value: number) => setCount((current) => Math.max(current ?? 0, value)), [])

  // What plain HTTP says at load, before the socket is up.
  useEffect(() => {
    requestJson<AppState>('/api/me').then((next) => next && applyState(next), (err: unknown) => setError(message(err)))
  }, [applyState])

  // On every ready (first connect, reconnect, rejoin), the socket's view of the session.
  useEffect(() => {
    if (state.status !== 'ready') return
    let current = true
    void (async () => {
      try {
        const next = await call('app.state')
        if (!current) return
        applyState(next)
        setTabs(await call('tabs.list'))
        if (next.test) setSessionId((await call('test.whoami')).sessionId)
      } catch (err) {
        if (current) setError(message(err))
      }
    })()
    return () => {
      current = false
    }
  }, [state, call, applyState])

  // SS_TEST only: e2e specs reach the client (e.g. `client.call('test.whoami')`), as on /plain.html.
  useEffect(() => {
    if (me?.test) window.client = socket
  }, [me?.test, socket])

  useEffect(() => on('tabs', (next: TabView[]) => setTabs(next)), [on])
  useEffect(
    () =>
      on('counter', (event: CounterEvent) => {
        bump(event.count)
        setLastChange(event.via === 'http' ? 'HTTP: fetch POST /api/counter' : `RPC: counter.increment from ${event.tabId === socket.tabId ? 'this tab' : `tab ${event.tabId}`}`)
      }),
    [on, bump, socket],
  )

  const run = (action: () => Promise<unknown>) => () => {
    setError('')
    action().catch((err: unknown) => setError(message(err)))
  }
  const incrementHttp = run(async () => {
    const post = () => requestJson<{ count: number }>('/api/counter', { method: 'POST' })
    const reply = await post().catch(async (err: unknown) => {
      // The cookie no longer carries the session: the socket still does, so put the cookie
      // back through it and try once more.
      if (!(err instanceof HttpError && err.code === 'NO_SESSION')) throw err
      await restoreSessionCookie(socket, story)
      return post()
    })
    if (reply) bump(reply.count)
  })
  const incrementRpc = run(async () => bump((await call('counter.increment')).count))
  /**
   * Whether HTTP requests carry the session. Not known yet: restore the cookie once and see
   * whether the browser keeps it; anything but a cookie the browser dropped (e.g. the socket is
   * down) counts as yes, and leaves the action to plain HTTP.
   */
  const cookiesStickNow = async () => cookiesStick ?? (await cookies.check().then((result) => result.kept || result.reason !== 'not-stored'))
  const signOut = run(async () => {
    story.signingOut('logout')
    if (await cookiesStickNow()) {
      await requestJson('/logout', { method: 'POST' })
      return
    }
    // This tab's own session ends while the call runs: SESSION_ENDED is the expected answer.
    await call('user.signOut').catch((err: { code?: string }) => {
      if (err.code !== 'SESSION_ENDED' && err.code !== 'CLOSED') throw err
    })
  })
  const signIn = (form: HTMLFormElement, name: string) =>
    run(async () => {
      if (await cookiesStickNow()) form.submit()
      else applyState(await call('user.signIn', { name }))
    })()
  const signOutEverywhere = run(async () => {
    story.signingOut('everywhere')
    // This tab's own session ends while the call runs: SESSION_ENDED is the expected answer.
    await call('user.signOutEverywhere').catch((err: { code?: string }) => {
      if (err.code !== 'SESSION_ENDED' && err.code !== 'CLOSED') throw err
    })
  })

  const over = status === 'ended' || status === 'closed'
  return (
    <main>
      <StatusBar status={status} lastEvent={lastEvent} />
      {over && (
        <section className="banner" data-testid="ended-banner">
          <p>This tab is no longer connected to a session.</p>
          <button type="button" onClick={() => location.reload()}>
            Start again
          </button>
        </section>
      )}
      <div className="grid">
        <SignInCard
          user={me?.user ?? null}
          disabled={over}
          cookiesStick={cookiesStick}
          onSignIn={signIn}
          onSignOut={signOut}
          onSignOutEverywhere={signOutEverywhere}
        />
        <CounterCard count={count} lastChange={lastChange} disabled={over} onHttp={incrementHttp} onRpc={incrementRpc} />
        {/* An ended tab belongs to no session: it lists none. */}
        <TabList tabs={over ? [] : tabs} me={tabId} />
      </div>
      {error && (
        <p className="error" role="alert" data-testid="action-error">
          {error}
        </p>
      )}
      <TryIt />
      <footer>
        <span>
          this tab: <code data-testid="tab-id">{tabId}</code>
        </span>
        {me?.test && (
          <span>
            session (SS_TEST): <code data-testid="session-id">{sessionId ?? ''}</code>
          </span>
        )}
        <a href="/plain.html">the same with a plain &lt;script&gt; tag</a>
      </footer>
    </main>
  )
}
