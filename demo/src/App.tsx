import { forgetSessionId, useSessionState } from 'workflow-session'
import { Cart } from './Cart.js'
import { SignupForm } from './SignupForm.js'
import { SyncBadge } from './SyncBadge.js'

export function App() {
  const { sessionId } = useSessionState()
  return (
    <main>
      <h1>workflow-session demo</h1>
      <p>Type, reload, close the tab, stop the server: nothing you typed is lost.</p>
      <SyncBadge />
      <section aria-labelledby="signup-heading">
        <h2 id="signup-heading">1. Sign up</h2>
        <SignupForm />
      </section>
      <section aria-labelledby="cart-heading">
        <h2 id="cart-heading">2. Shopping cart</h2>
        <Cart />
      </section>
      <footer>
        <p>
          Session <code>{sessionId}</code>{' '}
          <button
            type="button"
            className="secondary"
            onClick={() => {
              forgetSessionId('/api/session')
              location.reload()
            }}
          >
            Start a new session
          </button>
        </p>
      </footer>
    </main>
  )
}
