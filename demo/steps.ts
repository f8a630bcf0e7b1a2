import type { JsonValue } from 'workflow-session/client'
import { StepError, type Steps } from 'workflow-session/server'
import { CATALOG, isProduct, type Order } from './catalog.js'
import type { CheckoutData } from './src/Cart.js'
import type { SignupData } from './src/SignupForm.js'

/** How long the report takes: 20 s, or `DEMO_REPORT_MS` (the tests make it shorter). The stories load these steps in a page, without `process`. */
const REPORT_MS = Number((globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env.DEMO_REPORT_MS ?? 20_000)

/** The demo's server steps: each reads what the person saved, and writes its result back. */
export const demoSteps: Steps = {
  // A long step, as an LLM call or a data job is: it reports progress, stops when cancelled,
  // and its result is merged when it ends, even if the page that started it was closed.
  report: async ({ variables, progress, signal }) => {
    const parts = 10
    for (let done = 0; done < parts; done++) {
      progress({ done, of: parts })
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, REPORT_MS / parts)
        const stop = () => {
          clearTimeout(timer)
          resolve()
        }
        signal.addEventListener('abort', stop, { once: true })
      })
      if (signal.aborted) return {}
    }
    const fields = Object.keys(variables).filter((name) => !name.endsWith(':at')).length
    const message = `Report ready: ${fields} saved fields looked at`
    return { output: { message }, variables: { report: { message, at: new Date().toISOString() } } }
  },

  register: ({ workflow }) => {
    const signup = workflow<SignupData>('signup')
    const email = signup.get('email', '').trim()
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new StepError('Enter a valid email address first')
    // Schema version 2 calls the field `fullName` (demo/schema.ts); a session is read in the server's version.
    const name = (signup.get('fullName') ?? signup.get('name') ?? '').trim() || email
    signup.set('registeredEmail', email)
    signup.setStep('registered')
    return { output: { message: `Welcome, ${name}! Your account is ready.` } }
  },

  checkout: ({ workflow }) => {
    const checkout = workflow<CheckoutData>('checkout')
    // The cart comes from the browser as it sent it: a line may be anything, null included.
    const lines = checkout
      .get('cart', [])
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- see above
      .filter((line) => isProduct(line?.product) && Number.isInteger(line.qty) && line.qty > 0)
      .map((line) => ({ product: line.product, qty: line.qty, cents: CATALOG[line.product].cents * line.qty }))
    if (lines.length === 0) throw new StepError('The cart is empty')
    const orders = checkout.get('orders', [])
    const order: Order = {
      number: orders.length + 1,
      lines,
      totalCents: lines.reduce((sum, line) => sum + line.cents, 0),
      placedAt: new Date().toISOString(),
      ...(checkout.get('name') ? { deliverTo: checkout.get('name') } : {}),
    }
    checkout.set('orders', [...orders, order])
    checkout.set('cart', [])
    checkout.setStep('ordered')
    return { output: JSON.parse(JSON.stringify(order)) as JsonValue }
  },
}
