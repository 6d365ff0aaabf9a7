/** How to see each guarantee by hand, with what the badge then says. */
export function TryIt() {
  return (
    <section className="card try-it">
      <h2>Try it</h2>
      <ul>
        <li>
          <strong>Cookie loss:</strong> delete the <code>demo.sid</code> cookie (DevTools → Application → Cookies), then click <em>+1 over HTTP</em>:
          the socket puts the cookie back and the count goes on — <em>restored after cookie loss</em>.
        </li>
        <li>
          <strong>Restart:</strong> stop the server (Ctrl-C) and start it again: same session, same counter — <em>reconnected after server restart</em>.
        </li>
        <li>
          <strong>Network loss:</strong> DevTools → Network → Offline, then back online — <em>reconnected after network loss</em>.
        </li>
        <li>
          <strong>Tabs:</strong> open this page in a second tab: both are listed; <em>Sign out</em> in one ends both.
        </li>
        <li>
          <strong>Everywhere:</strong> sign in with the same name in another browser, then <em>Sign out everywhere</em>.
        </li>
      </ul>
    </section>
  )
}
