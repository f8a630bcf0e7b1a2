import type { Meta, StoryObj } from '@storybook/react-vite'
import { expect, userEvent, waitFor, within } from 'storybook/test'
import { memoryStore } from 'workflow-session/msw'
import { type Step, StepError } from 'workflow-session/server'
import { LongStep } from '../demo/src/LongStep.js'
import { MockSession, type MockSessionProps } from './MockSession.js'

/** A report step that reports progress every 100 ms for `ms`, and stops when its run is cancelled. */
const reportFor =
  (ms: number, { progress: reports = true } = {}): Step =>
  async ({ progress, signal }) => {
    const started = Date.now()
    while (Date.now() - started < ms && !signal.aborted) {
      if (reports) progress({ done: Math.floor((Date.now() - started) / (ms / 10)), of: 10 })
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return { output: { message: 'Report ready: 3 saved fields looked at' }, variables: { report: { message: 'Report ready' } } }
  }

function Screen(props: Omit<MockSessionProps, 'children'>) {
  return (
    <MockSession {...props}>
      <LongStep />
    </MockSession>
  )
}

const meta = {
  title: 'Session/Long step (runs)',
  component: Screen,
} satisfies Meta<typeof Screen>
export default meta
type Story = StoryObj<typeof meta>

const start = async (canvasElement: HTMLElement) => {
  const canvas = within(canvasElement)
  await userEvent.click(canvas.getByRole('button', { name: 'Make a report' }))
  return canvas
}

/** Running: the progress bar moves while the step reports, and Cancel is offered. */
export const RunningWithProgress: Story = {
  args: { steps: { report: reportFor(60_000) } },
  play: async ({ canvasElement }) => {
    const canvas = await start(canvasElement)
    await waitFor(() => expect(canvas.getByRole('button', { name: 'Making the report…' })).toBeDisabled())
    await waitFor(() => expect(Number(canvas.getByLabelText('Report progress').getAttribute('value'))).toBeGreaterThanOrEqual(1), {
      timeout: 10_000,
    })
    await expect(canvas.getByRole('button', { name: 'Cancel' })).toBeEnabled()
  },
}

/** Succeeded: the output shows, and the step's variables are merged. */
export const Succeeded: Story = {
  args: { steps: { report: reportFor(300) } },
  play: async ({ canvasElement }) => {
    const canvas = await start(canvasElement)
    await waitFor(() => expect(canvas.getByRole('note')).toHaveTextContent('Report ready: 3 saved fields looked at'), { timeout: 5000 })
    await waitFor(() => expect(canvas.getByRole('button', { name: 'Make a report' })).toBeEnabled())
  },
}

/** Failed: the step's own message (a StepError) is shown. */
export const Failed: Story = {
  args: {
    steps: {
      report: () => {
        throw new StepError('The data source is down')
      },
    },
  },
  play: async ({ canvasElement }) => {
    const canvas = await start(canvasElement)
    await waitFor(() => expect(canvas.getByRole('alert')).toHaveTextContent('Could not make the report: The data source is down'))
  },
}

/** Cancelled: Cancel ends the run; nothing of it is stored. */
export const Cancelled: Story = {
  args: { steps: { report: reportFor(60_000) } },
  play: async ({ canvasElement }) => {
    const canvas = await start(canvasElement)
    await userEvent.click(await canvas.findByRole('button', { name: 'Cancel' }))
    await waitFor(() => expect(canvas.getByText('The report was cancelled.')).toBeInTheDocument(), { timeout: 5000 })
    await expect(canvas.queryByRole('alert')).toBeNull()
  },
}

/** Timed out: the step passed its time limit (here 500 ms); nothing of it is stored. */
export const TimedOut: Story = {
  args: { steps: { report: { run: reportFor(60_000), timeoutMs: 500 } } },
  play: async ({ canvasElement }) => {
    const canvas = await start(canvasElement)
    await waitFor(
      () => expect(canvas.getByRole('alert')).toHaveTextContent('Could not make the report: The step did not finish within 500 ms'),
      {
        timeout: 5000,
      },
    )
  },
}

/** Lost: the server running the step stopped answering (its heartbeat is older than the bound, here 300 ms). */
export const Lost: Story = {
  args: { steps: { report: reportFor(60_000, { progress: false }) }, store: memoryStore({ runLostAfterMs: 300 }) },
  play: async ({ canvasElement }) => {
    const canvas = await start(canvasElement)
    await waitFor(
      () => expect(canvas.getByRole('alert')).toHaveTextContent('Could not make the report: The server running the step stopped answering'),
      { timeout: 8000 },
    )
  },
}
