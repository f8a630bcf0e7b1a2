// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { type LocalCopyStorage, memoryLocalCopy, SessionProvider, useRun, useRuns } from '../../src/react/index.js'
import type { Step } from '../../src/server/index.js'
import { newGate } from '../gate.js'
import { setupMockServer } from '../msw-server.js'

let release: () => void = () => {}
const slow: Step = async ({ progress }) => {
  const { gate, release: open } = newGate()
  release = open
  progress({ done: 1, of: 2 })
  await gate
  return { output: 'summary ready', variables: { summary: 'ready' } }
}
/** The same without progress: its start is answered only after the wait (or a cancel). */
const quiet: Step = async () => {
  const { gate, release: open } = newGate()
  release = open
  await gate
  return { output: 'quiet done' }
}
const mock = setupMockServer({ slow, quiet })

let sessionNumber = 0
let sessionId = ''
let storage: LocalCopyStorage
beforeEach(() => {
  sessionId = `react-runs-${++sessionNumber}`
  storage = memoryLocalCopy()
})
afterEach(() => {
  release()
  cleanup()
})

function Summary({ step = 'slow' }: { step?: string }) {
  const { run, cancel, status, progress, output, isRunning } = useRun<string>(step)
  const { runs } = useRuns()
  return (
    <>
      <button onClick={() => run()}>Run</button>
      <button onClick={() => void cancel()}>Cancel</button>
      <output aria-label="run">{isRunning ? `running ${JSON.stringify(progress)}` : `${status} ${output ?? ''}`.trim()}</output>
      <output aria-label="runs">{runs.map((r) => `${r.step}:${r.status}`).join(',')}</output>
    </>
  )
}

/** A page of the app; rendering it again with the same storage is a reload. */
function page(step?: string) {
  return render(
    <SessionProvider endpoint="/api/session" sessionId={sessionId} storage={storage}>
      <Summary step={step} />
    </SessionProvider>,
  )
}
const shown = () => screen.getByLabelText('run').textContent

it('after a reload mid-run, useRun shows the run that is going, its progress, then its output; useRuns lists it', async () => {
  const first = page()
  fireEvent.click(screen.getByText('Run'))
  await waitFor(() => expect(shown()).toBe('running {"done":1,"of":2}'))
  first.unmount() // the page reloads; the run goes on on the server
  page()
  await waitFor(() => expect(shown()).toBe('running {"done":1,"of":2}'))
  expect(screen.getByLabelText('runs').textContent).toBe('slow:running')
  await act(async () => release())
  await waitFor(() => expect(shown()).toBe('succeeded summary ready'), { timeout: 5000 })
  expect(screen.getByLabelText('runs').textContent).toBe('slow:succeeded')
  expect((await mock.store.get(sessionId))!.variables).toEqual({ summary: 'ready' })
  // The reload sent the kept start again, under the same id: the server answered the same run.
  const starts = mock.posts().filter((request) => request.path.endsWith('/runs'))
  expect(new Set(starts.map((request) => (request.body as { runId: string }).runId)).size).toBe(1)
  expect(await mock.store.listRuns(sessionId)).toHaveLength(1)
})

it('cancel() from the hook ends the run cancelled, also right after Run (before its start is answered)', async () => {
  page('quiet')
  fireEvent.click(screen.getByText('Run'))
  await waitFor(() => expect(shown()).toBe('running null'))
  fireEvent.click(screen.getByText('Cancel'))
  await waitFor(() => expect(shown()).toBe('cancelled'), { timeout: 5000 })
  expect(await mock.store.get(sessionId)).toMatchObject({ variables: {} })
})
