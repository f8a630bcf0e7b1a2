import { useState } from 'react'
import { useRun, useWorkflow } from 'workflow-session'
import { type CartLine, CATALOG, euros, type Order, type ProductId } from '../catalog.js'

export interface CheckoutData {
  cart: CartLine[]
  orders: Order[]
  /** Who the order goes to: a field named like the sign-up's, kept apart by the workflow. */
  name: string
}

/** The checkout workflow: a cart saved as you change it; "Place order" runs the server's step on what was saved. */
export function Cart() {
  const checkout = useWorkflow<CheckoutData>('checkout')
  const cart = checkout.get('cart', [])
  const orders = checkout.get('orders', [])
  const setCart = (update: (lines: CartLine[]) => CartLine[]) => checkout.set('cart', update(checkout.get('cart', [])))
  const [product, setProduct] = useState<ProductId>('milk')
  const [qty, setQty] = useState(1)
  const { run, isRunning, output, error } = useRun<Order>('checkout')

  const add = () =>
    setCart((lines) => {
      const existing = lines.find((line) => line.product === product)
      return existing ? lines.map((line) => (line === existing ? { ...line, qty: line.qty + qty } : line)) : [...lines, { product, qty }]
    })
  const remove = (id: ProductId) => setCart((lines) => lines.filter((line) => line.product !== id))
  const total = cart.reduce((sum, line) => sum + CATALOG[line.product].cents * line.qty, 0)

  return (
    <div className="cart">
      <form
        aria-label="Add to cart"
        onSubmit={(event) => {
          event.preventDefault()
          add()
        }}
      >
        <label>
          Product
          <select value={product} onChange={(event) => setProduct(event.target.value as ProductId)}>
            {Object.entries(CATALOG).map(([id, item]) => (
              <option key={id} value={id}>
                {item.name} — {euros(item.cents)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Quantity
          <input type="number" min={1} max={99} value={qty} onChange={(event) => setQty(Math.max(1, Number(event.target.value) || 1))} />
        </label>
        <button type="submit">Add to cart</button>
      </form>

      <label>
        Deliver to
        <input value={checkout.get('name', '')} onChange={(event) => checkout.set('name', event.target.value)} />
      </label>
      <ul aria-label="Cart">
        {cart.map((line) => (
          <li key={line.product}>
            {line.qty} × {CATALOG[line.product].name} — {euros(CATALOG[line.product].cents * line.qty)}{' '}
            <button type="button" className="secondary" onClick={() => remove(line.product)}>
              Remove {CATALOG[line.product].name}
            </button>
          </li>
        ))}
      </ul>
      <p>{cart.length === 0 ? 'The cart is empty.' : `Total: ${euros(total)}`}</p>
      <button type="button" onClick={() => run()} disabled={isRunning || cart.length === 0}>
        {isRunning ? 'Placing order…' : 'Place order'}
      </button>
      {output && (
        <p role="note">
          Order #{output.number} placed: {euros(output.totalCents)}
        </p>
      )}
      {error && <p role="alert">Could not place the order: {error.message}</p>}
      {orders.length > 0 && <p>Orders so far: {orders.map((order) => `#${order.number} (${euros(order.totalCents)})`).join(', ')}</p>}
    </div>
  )
}
