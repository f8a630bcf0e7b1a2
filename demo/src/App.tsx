import { useSessionState } from 'workflow-session'
import { Cart } from './Cart.js'
import { LongStep } from './LongStep.js'
import { Sessions } from './Sessions.js'
import { SignupForm } from './SignupForm.js'
import { SyncBadge } from './SyncBadge.js'

export function App({ schemaVersion }: { schemaVersion: number }) {
  const { sessionId } = useSessionState()
  return (
    <main>
      <h1>workflow-session demo</h1>
      <p>Type, reload, close the tab, stop the server: nothing you typed is lost.</p>
      <SyncBadge />
      <section aria-labelledby="signup-heading">
        <h2 id="signup-heading">1. Sign up</h2>
        <SignupForm schemaVersion={schemaVersion} />
      </section>
      <section aria-labelledby="cart-heading">
        <h2 id="cart-heading">2. Shopping cart</h2>
        <Cart />
      </section>
      <section aria-labelledby="report-heading">
        <h2 id="report-heading">3. A long step</h2>
        <LongStep />
      </section>
      <section aria-labelledby="sessions-heading">
        <h2 id="sessions-heading">4. Your sessions</h2>
        <p>
          This is session <code>{sessionId}</code>.
        </p>
        <Sessions />
      </section>
    </main>
  )
}
