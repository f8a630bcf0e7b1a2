import { StepError, type Steps } from 'workflow-session/server'
import { CATALOG, isProduct, type CartLine, type Order } from './catalog.js'

/** The demo's server steps: each reads what the person saved, and writes its result back. */
export const demoSteps: Steps = {
  register: ({ variables }) => {
    const email = typeof variables.email === 'string' ? variables.email.trim() : ''
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new StepError('Enter a valid email address first')
    const name = typeof variables.name === 'string' && variables.name.trim() !== '' ? variables.name.trim() : email
    return { output: { message: `Welcome, ${name}! Your account is ready.` }, variables: { registeredEmail: email } }
  },

  checkout: ({ variables }) => {
    const cart = (Array.isArray(variables.cart) ? variables.cart : []) as unknown as CartLine[]
    const lines = cart
      .filter((line) => isProduct(line?.product) && Number.isInteger(line.qty) && line.qty > 0)
      .map((line) => ({ product: line.product, qty: line.qty, cents: CATALOG[line.product].cents * line.qty }))
    if (lines.length === 0) throw new StepError('The cart is empty')
    const orders = (Array.isArray(variables.orders) ? variables.orders : []) as unknown as Order[]
    const order: Order = {
      number: orders.length + 1,
      lines,
      totalCents: lines.reduce((sum, line) => sum + line.cents, 0),
      placedAt: new Date().toISOString(),
    }
    const stored = JSON.parse(JSON.stringify([...orders, order]))
    return { output: JSON.parse(JSON.stringify(order)), variables: { orders: stored, cart: [] } }
  },
}
