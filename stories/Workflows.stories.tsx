import type { Meta, StoryObj } from '@storybook/react-vite'
import { expect, userEvent, waitFor, within } from 'storybook/test'
import { useWorkflow } from 'workflow-session'
import { Cart } from '../demo/src/Cart.js'
import { SignupForm } from '../demo/src/SignupForm.js'
import { SyncBadge } from '../demo/src/SyncBadge.js'
import { MockSession } from './MockSession.js'

function TwoWorkflows() {
  return (
    <MockSession>
      <SyncBadge />
      <h2>Sign up</h2>
      <SignupForm />
      <h2>Checkout</h2>
      <Cart />
    </MockSession>
  )
}

/** A checkout that enters a payment subflow, which enters a verification subflow, and returns. */
function SubflowWizard() {
  const checkout = useWorkflow('checkout')
  const depth = checkout.stack.length
  return (
    <section aria-label="Checkout wizard">
      <p role="status">
        {[...checkout.stack.map((frame) => frame.flow), checkout.flow].join(' › ')} — step {checkout.step ?? 'start'}
      </p>
      {checkout.flow === 'checkout' && (
        <button
          onClick={() => {
            checkout.setStep('cart')
            checkout.enterSubflow('payment', 'card', { amount: 42 })
          }}
        >
          Pay
        </button>
      )}
      {checkout.flow === 'payment' && <button onClick={() => checkout.enterSubflow('verify', 'code')}>Verify card</button>}
      {depth > 0 && <button onClick={() => checkout.exitSubflow(checkout.flow === 'verify' ? 'charged' : 'confirmed')}>Done here</button>}
    </section>
  )
}

const meta = { title: 'Session/Workflows' } satisfies Meta
export default meta
type Story = StoryObj<typeof meta>

/** Sign-up and checkout in one session: each has a "name", and each keeps its own. */
export const SignupAndCheckout: Story = {
  render: () => <TwoWorkflows />,
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    await userEvent.type(canvas.getByLabelText('Name'), 'Ada')
    await userEvent.type(canvas.getByLabelText('Deliver to'), 'Grace')
    await userEvent.click(canvas.getByRole('button', { name: 'Add to cart' }))
    await expect(canvas.getByLabelText('Name')).toHaveValue('Ada')
    await expect(canvas.getByLabelText('Deliver to')).toHaveValue('Grace')
    await userEvent.click(canvas.getByRole('button', { name: 'Place order' }))
    await waitFor(() => expect(canvas.getByText(/Order #1 placed/)).toBeVisible(), { timeout: 3000 })
    await expect(canvas.getByLabelText('Name')).toHaveValue('Ada')
  },
}

/** Entering two levels of subflows and coming back, each time to the right step. */
export const EnteringAndLeavingASubflow: Story = {
  render: () => (
    <MockSession>
      <SubflowWizard />
    </MockSession>
  ),
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    const status = () => canvas.getByRole('status')
    await userEvent.click(canvas.getByRole('button', { name: 'Pay' }))
    await expect(status()).toHaveTextContent('checkout › payment — step card')
    await userEvent.click(canvas.getByRole('button', { name: 'Verify card' }))
    await expect(status()).toHaveTextContent('checkout › payment › verify — step code')
    await userEvent.click(canvas.getByRole('button', { name: 'Done here' }))
    await expect(status()).toHaveTextContent('checkout › payment — step charged')
    await userEvent.click(canvas.getByRole('button', { name: 'Done here' }))
    await expect(status()).toHaveTextContent('checkout — step confirmed')
  },
}
