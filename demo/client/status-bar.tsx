import type { Status } from '@session-socket/browser'

const HINT: Record<Status, string> = {
  connecting: 'opening the socket',
  registering: 'sending the link token',
  ready: 'tied to your session',
  rejoining: 'following a sign-in into the new session',
  offline: 'trying again',
  ended: 'session over',
  closed: 'closed',
}

/** The connection badge and what happened to the connection last. */
export function StatusBar({ status, lastEvent }: { status: Status; lastEvent: string }) {
  return (
    <header className="status-bar">
      <h1>session-socket demo</h1>
      <div className="status">
        <span className={`badge badge-${status}`} title={HINT[status]} data-testid="status">
          {status}
        </span>
        <span className="last-event" data-testid="last-event">
          {lastEvent}
        </span>
      </div>
    </header>
  )
}
