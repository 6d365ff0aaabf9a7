// The demo with only the <script> bundle: window.SessionSocket is @session-socket/browser.
const { createSessionSocket, idbTokenStorage, sessionStorageTabId } = window.SessionSocket

const $ = (id) => document.querySelector(`[data-testid="${id}"]`)
// With several nodes behind a balancer that is not sticky, the server asks for WebSocket only.
const transports = document.querySelector('meta[name="session-socket-transports"]')?.getAttribute('content')
const client = createSessionSocket({
  tokenStorage: idbTokenStorage(),
  tabIdStorage: sessionStorageTabId(),
  ...(transports ? { socketOptions: { transports: transports.split(',') } } : {}),
})
window.client = client

let count = 0
const showCount = (value, absolute) => {
  count = absolute ? value : Math.max(count, value)
  $('counter').textContent = String(count)
}
const showError = (err) => {
  $('action-error').textContent = err ? err.message || String(err) : ''
}

const ENDED = { logout: 'ended: signed out', expired: 'ended: the session expired', revoked: 'ended: the session was ended by the server' }

client.on('status', (state) => {
  $('status').textContent = state.status
  if (state.status === 'offline') $('last-event').textContent = `connection lost, retrying in ${(state.retryIn / 1000).toFixed(1)} s`
  if (state.status === 'closed') $('last-event').textContent = 'closed'
})
client.on('ready', async ({ restored, reason, cookieRestored }) => {
  $('tab-id').textContent = client.tabId
  $('last-event').textContent =
    cookieRestored && restored ? 'restored after cookie loss' : restored ? 'ready: session restored by the link token' : `ready: ${reason}`
  try {
    showCount((await client.call('app.state')).count, true)
  } catch (err) {
    showError(err)
  }
})
client.on('ended', (reason) => {
  $('last-event').textContent = ENDED[reason] || `ended: ${reason}`
})
client.on('counter', (event) => showCount(event.count, false))

const postCounter = () => fetch('/api/counter', { method: 'POST', headers: { Accept: 'application/json' } })

/**
 * Puts the session cookie back after an HTTP request found no session behind it. Connected:
 * restoreCookie() does it over the socket, without reconnecting. Not connected: the next
 * register restores it on its way, so wait for that ready.
 */
const restoreSessionCookie = async () => {
  const result = await client.restoreCookie()
  if (result.kept) {
    $('last-event').textContent = 'restored after cookie loss'
    return
  }
  if (result.reason === 'not-stored') throw new Error('this browser does not keep the session cookie (blocked, or a proxy strips Set-Cookie)')
  if (client.status === 'ready') throw new Error('the session cookie could not be restored; reload the page')
  await new Promise((resolve, reject) => {
    const done = (err) => (clearTimeout(timer), offReady(), offEnded(), err ? reject(err) : resolve())
    const timer = setTimeout(() => done(new Error('not connected again within 10 s')), 10_000)
    const offReady = client.on('ready', () => done())
    const offEnded = client.on('ended', (reason) => done(new Error(`the session has ended (${reason})`)))
  })
}

$('counter-http').addEventListener('click', async () => {
  showError(null)
  try {
    let response = await postCounter()
    if (response.status === 401) {
      // No session behind the cookie (expired or deleted): the socket still knows it.
      await restoreSessionCookie()
      response = await postCounter()
    }
    if (!response.ok) throw new Error(`POST /api/counter answered ${response.status}`)
    showCount((await response.json()).count, false)
  } catch (err) {
    showError(err)
  }
})
$('counter-rpc').addEventListener('click', async () => {
  showError(null)
  try {
    showCount((await client.call('counter.increment')).count, false)
  } catch (err) {
    showError(err)
  }
})
