import type { FormEvent } from 'react'

interface Props {
  user: { id: string; name: string } | null
  disabled: boolean
  /** Whether this browser keeps the session cookie; null: not known yet. */
  cookiesStick: boolean | null
  /** Signs in when the cookie is not known to stick: over the form, or over the socket. */
  onSignIn: (form: HTMLFormElement, name: string) => void
  onSignOut: () => void
  onSignOutEverywhere: () => void
}

/**
 * Sign-in is a plain HTML form post: the server regenerates the session and redirects, and
 * this browser's other tabs rejoin the new session by themselves. When the browser does not
 * keep the session cookie (a proxy strips Set-Cookie, or cookies are blocked), a form post
 * would sign in a session no later request carries, so the form calls `user.signIn` over the
 * socket instead: the server regenerates the session in the call and the tabs follow it. Until
 * the page knows, `onSignIn` finds out first (`restoreCookie()` checks the browser kept it).
 */
export function SignInCard({ user, disabled, cookiesStick, onSignIn, onSignOut, onSignOutEverywhere }: Props) {
  if (!user) {
    const submit = (event: FormEvent<HTMLFormElement>) => {
      if (cookiesStick === true) return
      event.preventDefault()
      const name = new FormData(event.currentTarget).get('name')
      onSignIn(event.currentTarget, typeof name === 'string' ? name : '')
    }
    return (
      <section className="card">
        <h2>Sign in</h2>
        <form method="post" action="/login" className="sign-in" onSubmit={submit}>
          <input name="name" placeholder="your name" required maxLength={40} autoComplete="nickname" data-testid="signin-name" />
          <button type="submit" data-testid="signin-submit">
            Sign in
          </button>
        </form>
        {cookiesStick === false ? (
          <p className="note" data-testid="signin-over-socket">
            This browser does not keep the session cookie (a proxy strips Set-Cookie, or cookies are blocked): signing in over the socket.
          </p>
        ) : (
          <p className="note">Any name: the same name in two browsers is the same user.</p>
        )}
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
