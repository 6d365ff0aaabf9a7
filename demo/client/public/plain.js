// The demo with only the <script> bundle: window.SessionSocket is @session-socket/browser.
const { createSessionSocket, idbTokenStorage, sessionStorageTabId } = window.SessionSocket

const $ = (id) => document.querySelector(`[data-testid="${id}"]`)
const client = createSessionSocket({ tokenStorage: idbTokenStorage(), tabIdStorage: sessionStorageTabId() })
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
client.on('ready', async ({ restored, reason }) => {
  $('tab-id').textContent = client.tabId
  $('last-event').textContent = restored ? 'ready: session restored by the link token' : `ready: ${reason}`
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

/** Reconnects now; register restores the session cookie if the browser lost it. */
const reconnect = () =>
  new Promise((resolve, reject) => {
    const offReady = client.on('ready', () => (offReady(), offEnded(), resolve()))
    const offEnded = client.on('ended', (reason) => (offReady(), offEnded(), reject(new Error(`the session has ended (${reason})`))))
    client.socket.disconnect()
    client.connect()
  })

$('counter-http').addEventListener('click', async () => {
  showError(null)
  try {
    let response = await postCounter()
    if (response.status === 401) {
      // No session behind the cookie (expired or deleted): the socket's register restores it.
      await reconnect()
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
