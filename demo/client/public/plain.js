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

$('counter-http').addEventListener('click', async () => {
  showError(null)
  try {
    const response = await fetch('/api/counter', { method: 'POST', headers: { Accept: 'application/json' } })
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
