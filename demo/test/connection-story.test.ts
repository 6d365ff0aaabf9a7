import { describe, expect, it } from 'vitest'
import type { ConnectionState, EndReason, RegisterReason } from '@session-socket/browser'
import { SessionSocketError } from '@session-socket/browser'
import { ConnectionStory, type StoryPage, type StorySource } from '../client/connection-story.js'

/** A client double driven by the test: the events a SessionSocket and its socket emit. */
function fakeClient() {
  const listeners = new Map<string, Set<(...args: any[]) => void>>()
  const disconnects = new Set<(reason: string) => void>()
  const emit = (event: string, ...args: unknown[]) => listeners.get(event)?.forEach((fn) => fn(...args))
  const client = {
    state: { status: 'connecting' } as ConnectionState,
    get status() {
      return this.state.status
    },
    socket: {
      on: (_event: 'disconnect', fn: (reason: string) => void) => disconnects.add(fn),
      off: (_event: 'disconnect', fn: (reason: string) => void) => disconnects.delete(fn),
    },
    on(event: string, fn: (...args: any[]) => void) {
      if (!listeners.has(event)) listeners.set(event, new Set())
      listeners.get(event)!.add(fn)
      return () => void listeners.get(event)!.delete(fn)
    },
    setState(state: ConnectionState) {
      this.state = state
      emit('status', state)
    },
    ready(restored: boolean, reason: RegisterReason | null, cookieRestored = false) {
      this.setState({ status: 'ready', restored, reason })
      emit('ready', { restored, reason, cookieRestored })
    },
    disconnect(reason: string) {
      disconnects.forEach((fn) => fn(reason))
      this.setState({ status: 'offline', attempt: 0, retryIn: 500 })
    },
    end(reason: EndReason) {
      this.setState({ status: 'ended', reason })
      emit('ended', reason)
    },
    emit,
  }
  return client satisfies StorySource
}

function setup() {
  const client = fakeClient()
  let online = true
  const offline = new Set<() => void>()
  const page: StoryPage = { online: () => online, onOffline: (fn) => (offline.add(fn), () => offline.delete(fn)) }
  const story = new ConnectionStory(client, page)
  return {
    client,
    story,
    goOffline: () => {
      online = false
      offline.forEach((fn) => fn())
    },
    goOnline: () => (online = true),
  }
}

describe('ConnectionStory', () => {
  it('should tell a first connect of a new browser from a restored one', () => {
    const fresh = setup()
    fresh.client.ready(false, 'no-token')
    expect(fresh.story.text).toBe('connected: new link for this browser')
    const known = setup()
    known.client.ready(true, null)
    expect(known.story.text).toBe('connected: session restored by the link token')
  })

  it('should say "restored after cookie loss" when a restored link needed its cookie put back', () => {
    const { client, story } = setup()
    client.ready(true, null)
    client.disconnect('transport close')
    client.ready(true, null, true)
    expect(story.text).toBe('restored after cookie loss')
  })

  it('should say "restored after cookie loss" when the page put the cookie back with restoreCookie()', () => {
    const { client, story } = setup()
    client.ready(true, null)
    story.cookieRestored()
    expect(story.text).toBe('restored after cookie loss')
    // A later reconnect without a restore tells the reconnect again.
    client.disconnect('transport close')
    client.ready(true, null)
    expect(story.text).toBe('reconnected after network loss')
  })

  it('should not call the cookie of a brand-new session a cookie loss', () => {
    const { client, story } = setup()
    client.ready(false, 'no-token', true)
    expect(story.text).toBe('connected: new link for this browser')
  })

  it('should tell a server restart, announced by server:shutdown, from a network loss', () => {
    const { client, story } = setup()
    client.ready(true, null)
    client.emit('server:shutdown')
    client.disconnect('transport close')
    expect(story.text).toBe('server restarting, retrying in 0.5 s')
    client.ready(true, null)
    expect(story.text).toBe('reconnected after server restart')
    client.disconnect('transport close')
    expect(story.text).toBe('connection lost, retrying in 0.5 s')
    client.ready(true, null)
    expect(story.text).toBe('reconnected after network loss')
  })

  it('should say the browser went offline, then reconnected after network loss', () => {
    const { client, story, goOffline, goOnline } = setup()
    client.ready(true, null)
    goOffline()
    expect(story.text).toBe('network lost: the browser is offline')
    client.disconnect('transport close')
    goOnline()
    client.ready(true, null)
    expect(story.text).toBe('reconnected after network loss')
  })

  it('should tell a rejoin after a sign-in in another tab', () => {
    const { client, story } = setup()
    client.ready(true, null)
    client.disconnect('io client disconnect')
    client.ready(false, 'cookie-session')
    expect(story.text).toBe('rejoined: the session changed (sign-in in another tab)')
  })

  it("should tell this tab's own sign-out from one in another tab or browser", () => {
    const own = setup()
    own.client.ready(true, null)
    own.story.signingOut('logout')
    own.client.end('logout')
    expect(own.story.text).toBe('ended: you signed out')

    const other = setup()
    other.client.ready(true, null)
    other.client.end('logout')
    expect(other.story.text).toBe('ended: signed out in another tab')

    const everywhere = setup()
    everywhere.client.ready(true, null)
    everywhere.client.emit('signout:everywhere', { tabId: 'x' })
    everywhere.client.end('logout')
    expect(everywhere.story.text).toBe('ended: signed out everywhere from another tab or browser')

    const ownEverywhere = setup()
    ownEverywhere.client.ready(true, null)
    ownEverywhere.story.signingOut('everywhere')
    ownEverywhere.client.end('logout')
    expect(ownEverywhere.story.text).toBe('ended: you signed out everywhere')
  })

  it('should say the session expired', () => {
    const { client, story } = setup()
    client.ready(true, null)
    client.end('expired')
    expect(story.text).toBe('ended: the session expired')
  })

  it('should say when another connection of this tab took over', () => {
    const { client, story } = setup()
    client.ready(true, null)
    client.setState({ status: 'closed', error: new SessionSocketError('CLOSED', 'another connection of this tab replaced this one') })
    expect(story.text).toBe('closed: this tab connected again elsewhere')
  })

  it('should notify subscribers on a change only', () => {
    const { client, story } = setup()
    let calls = 0
    story.subscribe(() => calls++)
    client.ready(true, null)
    client.setState({ status: 'ready', restored: true, reason: null })
    expect(calls).toBe(1)
  })
})
