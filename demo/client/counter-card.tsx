interface Props {
  count: number | null
  lastChange: string
  disabled: boolean
  onHttp: () => void
  onRpc: () => void
}

/** One number in the session, changed by an HTTP request and by an RPC over the socket. */
export function CounterCard({ count, lastChange, disabled, onHttp, onRpc }: Props) {
  return (
    <section className="card">
      <h2>Session counter</h2>
      <p className="counter" data-testid="counter">
        {count ?? '–'}
      </p>
      <div className="actions">
        <button type="button" onClick={onHttp} disabled={disabled} data-testid="counter-http">
          +1 over HTTP
        </button>
        <button type="button" onClick={onRpc} disabled={disabled} data-testid="counter-rpc">
          +1 over the socket
        </button>
      </div>
      <p className="note" data-testid="counter-last-change">
        {lastChange || 'Both buttons change req.session.count of one session.'}
      </p>
    </section>
  )
}
