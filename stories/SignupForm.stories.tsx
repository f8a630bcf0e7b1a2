import type { Meta, StoryObj } from '@storybook/react-vite'
import { onlineManager } from '@tanstack/react-query'
import { delay, http, HttpResponse } from 'msw'
import { expect, userEvent, waitFor, within } from 'storybook/test'
import { SignupForm } from '../demo/src/SignupForm.js'
import { SyncBadge } from '../demo/src/SyncBadge.js'
import { MockSession, type MockSessionProps } from './MockSession.js'

/** A patch to one session (not a run): `POST …/api/session/{id}`. */
const PATCH = /\/api\/session\/[^/?]+(\?.*)?$/

function Screen(props: Omit<MockSessionProps, 'children'>) {
  return (
    <MockSession {...props}>
      <SyncBadge />
      <SignupForm />
    </MockSession>
  )
}

const meta = {
  title: 'Session/Sign-up form',
  component: Screen,
} satisfies Meta<typeof Screen>
export default meta
type Story = StoryObj<typeof meta>

const status = (canvasElement: HTMLElement) => within(canvasElement).getByRole('status')

/** A new session: nothing typed yet, nothing to save. */
export const FreshSession: Story = {
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'))
    await expect(canvas.getByLabelText('Email')).toHaveValue('')
    await expect(canvas.getByRole('button', { name: 'Register' })).toBeEnabled()
  },
}

/** Typing: the text shows at once, the badge says "Saving…", then "Saved" once the server has it. */
export const Typing: Story = {
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'))
    await userEvent.type(canvas.getByLabelText('Email'), 'ada@example.com')
    await expect(canvas.getByLabelText('Email')).toHaveValue('ada@example.com')
    await expect(status(canvasElement)).toHaveTextContent('Saving…')
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'), { timeout: 3000 })
  },
}

/** A slow server: the change stays "Saving…" until the answer comes, and the field stays usable. */
export const SlowServer: Story = {
  args: {
    faults: [
      http.post(PATCH, async () => {
        await delay(1500)
      }),
    ],
  },
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'))
    await userEvent.type(canvas.getByLabelText('Name'), 'Ada')
    await new Promise((resolve) => setTimeout(resolve, 800))
    await expect(status(canvasElement)).toHaveTextContent('Saving…')
    await userEvent.type(canvas.getByLabelText('Name'), ' Lovelace')
    await expect(canvas.getByLabelText('Name')).toHaveValue('Ada Lovelace')
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'), { timeout: 6000 })
  },
}

let failures = 0
/** The server fails twice (503): the badge says it is retrying, then "Saved"; nothing typed is lost. */
export const ServerErrorThenRetry: Story = {
  args: {
    faults: [
      http.post(PATCH, () => {
        if (failures++ >= 2) return undefined
        return HttpResponse.json({ error: { code: 'internal_error', message: 'server unavailable' } }, { status: 503 })
      }),
    ],
  },
  beforeEach: () => {
    failures = 0
  },
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'))
    await userEvent.type(canvas.getByLabelText('Email'), 'grace@example.com')
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent("Couldn't save (server unavailable). Retrying…"), { timeout: 3000 })
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'), { timeout: 6000 })
    await expect(canvas.getByLabelText('Email')).toHaveValue('grace@example.com')
  },
}

/** The server refuses a change for good (413): the value stays on screen and the badge says why. */
export const ChangeRefused: Story = {
  args: {
    faults: [
      http.post(PATCH, () => HttpResponse.json({ error: { code: 'too_large', message: 'the session is too large' } }, { status: 413 })),
    ],
  },
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'))
    await userEvent.type(canvas.getByLabelText('Name'), 'Ada')
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Not saved: the session is too large'), { timeout: 3000 })
    await expect(canvas.getByLabelText('Name')).toHaveValue('Ada')
  },
}

/** Run right after typing: the step waits for the change to be saved, and sees it. */
export const RunWithPendingChanges: Story = {
  args: { debounceMs: 5000 },
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'))
    await userEvent.type(canvas.getByLabelText('Email'), 'ada@example.com')
    await expect(status(canvasElement)).toHaveTextContent('Saving…')
    await userEvent.click(canvas.getByRole('button', { name: 'Register' }))
    await waitFor(() => expect(canvas.getByRole('note')).toHaveTextContent('Registered ada@example.com'), { timeout: 3000 })
    await expect(status(canvasElement)).toHaveTextContent('Saved')
  },
}

/** Offline: typing keeps working, the badge says the changes are kept, and they go out on reconnect. */
export const Offline: Story = {
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'))
    onlineManager.setOnline(false)
    try {
      await userEvent.type(canvas.getByLabelText('Name'), 'Ada')
      await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Offline — changes kept'))
      await new Promise((resolve) => setTimeout(resolve, 600))
      await expect(status(canvasElement)).toHaveTextContent('Offline — changes kept')
    } finally {
      onlineManager.setOnline(true)
    }
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'), { timeout: 3000 })
  },
}

const refusingStorage = {
  get: () => Promise.reject(new DOMException('IndexedDB is disabled', 'InvalidStateError')),
  set: () => Promise.reject(new DOMException('IndexedDB is disabled', 'InvalidStateError')),
  del: () => Promise.reject(new DOMException('IndexedDB is disabled', 'InvalidStateError')),
  keys: () => Promise.reject(new DOMException('IndexedDB is disabled', 'InvalidStateError')),
}

/** A browser that keeps nothing (private mode, storage disabled): the form still works, and says so. */
export const NothingKeptOnThisDevice: Story = {
  args: { storage: refusingStorage },
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('(this browser keeps nothing offline)'))
    await userEvent.type(canvas.getByLabelText('Email'), 'ada@example.com')
    await waitFor(() => expect(status(canvasElement)).toHaveTextContent('Saved'), { timeout: 3000 })
  },
}
