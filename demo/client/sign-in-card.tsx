interface Props {
  user: { id: string; name: string } | null
  disabled: boolean
  onSignOut: () => void
  onSignOutEverywhere: () => void
}

/**
 * Sign-in is a plain HTML form post: the server regenerates the session and redirects, and
 * this browser's other tabs rejoin the new session by themselves.
 */
export function SignInCard({ user, disabled, onSignOut, onSignOutEverywhere }: Props) {
  if (!user) {
    return (
      <section className="card">
        <h2>Sign in</h2>
        <form method="post" action="/login" className="sign-in">
          <input name="name" placeholder="your name" required maxLength={40} autoComplete="nickname" data-testid="signin-name" />
          <button type="submit" data-testid="signin-submit">
            Sign in
          </button>
        </form>
        <p className="note">Any name: the same name in two browsers is the same user.</p>
      </section>
    )
  }
  return (
    <section className="card">
      <h2>Signed in</h2>
      <p className="user">
        as <strong data-testid="user-name">{user.name}</strong>
      </p>
      <div className="actions">
        <button type="button" onClick={onSignOut} disabled={disabled} data-testid="signout">
          Sign out
        </button>
        <button type="button" onClick={onSignOutEverywhere} disabled={disabled} data-testid="signout-everywhere">
          Sign out everywhere
        </button>
      </div>
      <p className="note">Sign out ends every tab of this browser; everywhere ends every browser of {user.name}.</p>
    </section>
  )
}
